"""Redis keys and pub/sub channels: every name meander keeps in the store, built here.

Per stream ``S``: the learner's checkpoint and lease, the metrics of its live versions, the
state of each race, the last labelled event, the trainer's watch, the monitor's profile and the
service's prediction index; the registry's versions sit under :func:`registry`. Shared: the
notifier's channels and logs, and the webhook subscriptions.

>>> checkpoint("fraud"), metrics("fraud"), race("fraud", 3, 2)
('meander:fraud:learner:checkpoint', 'meander:fraud:metrics', 'meander:fraud:race:3:2')
>>> channel("alerts"), channel("models", "fraud"), log("alerts")
('meander:alerts', 'meander:models:fraud', 'meander:alerts:log')
>>> prediction("fraud", "tx-1001"), registry("fraud")
('meander:fraud:prediction:tx-1001', 'meander:registry:fraud:')
>>> deliveries("sub_1")
'meander:subscriptions:sub_1:deliveries'
"""

from __future__ import annotations

__all__ = [
    "ALIAS_CHANGE_SECONDS",
    "STORE_PROBE",
    "STORE_READY",
    "STORE_RESTORING",
    "SUBSCRIPTIONS",
    "SUBSCRIPTIONS_REVISION",
    "SUBSCRIPTION_SECRETS",
    "alias_change",
    "announced",
    "channel",
    "checkpoint",
    "deliveries",
    "epochs",
    "last_event",
    "lease",
    "log",
    "metrics",
    "prediction",
    "profile",
    "race",
    "registry",
    "watch",
]

STORE_PROBE = "meander:store:probe"
"""Written (expiring in seconds) by readiness checks, to see that the store takes writes."""
STORE_READY = "meander:store:ready"
"""Set once the store holds its data: new, or restored from ``meander.state``. Its absence
means a store that lost its data (or a new one): writes that matter wait for it."""
STORE_RESTORING = "meander:store:restoring"
"""Held by the one process restoring the store (SET NX with an expiry)."""
SUBSCRIPTIONS = "meander:subscriptions"
SUBSCRIPTION_SECRETS = "meander:subscriptions:secrets"
SUBSCRIPTIONS_REVISION = "meander:subscriptions:revision"


def announced(event_id: str) -> str:
    """Whom the notifier told of ``event_id``: a field per subscriber (see
    :mod:`meander.consumers.notifier.announced`)."""
    return f"meander:announced:{event_id}"


def deliveries(subscription: str) -> str:
    """The capped stream of ``subscription``'s delivery records."""
    return f"{SUBSCRIPTIONS}:{subscription}:deliveries"


def checkpoint(stream: str) -> str:
    """The learner's whole state, written in one ``SET``."""
    return f"meander:{stream}:learner:checkpoint"


def lease(stream: str) -> str:
    """Who owns the stream's learner."""
    return f"meander:{stream}:learner:lease"


def epochs(stream: str) -> str:
    """The counter of the stream's lease epochs: each learner that takes over gets the next."""
    return f"meander:{stream}:learner:epoch"


def metrics(stream: str) -> str:
    """The prequential metrics of the stream's live versions (the learner writes them)."""
    return f"meander:{stream}:metrics"


def race(stream: str, challenger: int, baseline: int) -> str:
    """The state of ``challenger``'s race against ``baseline`` (the trainer judges it)."""
    return f"meander:{stream}:race:{challenger}:{baseline}"


def last_event(stream: str) -> str:
    """The id of the last event the learner learnt from."""
    return f"meander:{stream}:last_event"


def watch(stream: str) -> str:
    """What the trainer watches after a promotion, to roll it back if it does worse."""
    return f"meander:{stream}:watch"


def profile(stream: str) -> str:
    """The live profile of the stream's features (the monitor writes it)."""
    return f"meander:{stream}:profile"


def prediction(stream: str, event_id: str) -> str:
    """The hash holding every model version's prediction for one event."""
    return f"meander:{stream}:prediction:{event_id}"


ALIAS_CHANGE_SECONDS = 3_600
"""How long the token of a registry's last alias change is kept: far longer than the attempts
of one change, which are what read it."""


def alias_change(stream: str) -> str:
    """The token of the last change of the stream's aliases, written in its transaction so that
    an attempt whose reply was lost is found made by the next attempt of the same change. It
    expires (:data:`ALIAS_CHANGE_SECONDS`) and is not in ``meander.state``: it is no part of the
    registry, and no attempt outlives a Redis that lost its data."""
    return f"meander:{stream}:alias_change"


def registry(stream: str) -> str:
    """The prefix of every key of the stream's model registry."""
    return f"meander:registry:{stream}:"


def channel(family: str, stream: str | None = None) -> str:
    """The pub/sub channel of ``family`` ("alerts" or "models"), or of one of its streams."""
    return f"meander:{family}" if stream is None else f"meander:{family}:{stream}"


def log(family: str) -> str:
    """The Redis stream that keeps the latest events of ``family`` ("alerts" or "models")."""
    return f"meander:{family}:log"
