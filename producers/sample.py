"""One observation a producer publishes, and the conversion that keeps its values JSON-ready.

>>> import numpy as np
>>> plain(np.float32(0.5)), plain(np.int64(3)), plain(float("nan")), plain(np.bool_(True))
(0.5, 3, None, True)
>>> Sample(index=7, event_id=event_id("sea", 42, 7), features={"x0": 1.5}, label=True).event_id
'sea-42-00000007'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np

__all__ = ["Sample", "event_id", "plain"]


@dataclass(frozen=True, slots=True)
class Sample:
    """An observation with its true label.

    ``concept`` is the concept it was drawn from when the source knows it (synthetic streams
    with discrete concepts), None otherwise; ``time`` is when it happened, when the source says.
    ``label`` None means the observation has no label to publish.
    """

    index: int
    event_id: str
    features: dict[str, Any]
    label: Any
    concept: int | None = None
    time: datetime | None = None


def event_id(name: str, seed: int, index: int) -> str:
    """The deterministic id of the ``index``-th event of a seeded source."""
    return f"{name}-{seed}-{index:08d}"


def plain(value: Any) -> Any:
    """``value`` as a plain Python value that JSON can carry.

    Numpy scalars are unwrapped, NaN, NaT and NA become None (a missing value), dates ISO 8601
    text, decimals floats; anything else becomes its text. So does an infinity (a number beyond
    the floats' range in a file, 1e400): JSON has none, and it would have been written as null,
    a missing value, where the schema should say what is wrong with it.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isinf(value):
            return str(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64):
            return None if np.isnat(value) else str(value)
        return plain(value.item())
    if _is_missing(value):  # before datetime: pandas' NaT is a datetime
        return None
    if isinstance(value, datetime):
        return _aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _aware(moment: datetime) -> datetime:
    # A naive time in a file is taken as UTC: the usual convention for event logs.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _is_missing(value: Any) -> bool:
    # pandas' NA and NaT are their own types; asking pandas keeps this module light on imports.
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
