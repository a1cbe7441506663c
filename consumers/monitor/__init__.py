"""The monitor component (:mod:`meander.consumers.monitor.monitor`): data drift, missing values
and schema violations, with what it keeps per feature (``feature_watch``) and the statistics of
a window (``profile``)."""

from meander.consumers.monitor.monitor import Monitor

__all__ = ["Monitor"]
