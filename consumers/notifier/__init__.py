"""The notifier component (:mod:`meander.consumers.notifier.notifier`): alerts and lifecycle
events delivered to people and programs, through webhooks (``webhooks``, ``targets``,
``deliveries``, ``alertmanager``) and the subscriptions kept for them (``subscriptions``)."""

from meander.consumers.notifier.notifier import Notifier

__all__ = ["Notifier"]
