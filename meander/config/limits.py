"""Bounded numbers for the settings: sizes, counts and durations with an upper limit and a reason.

Without a limit, ``data_window = 1e20`` passed the check and failed later, as a memory error or a
time-out a client cannot hold. Each type here says what its number is and why it stops where it
does, and refuses a value above it before it is parsed, so the message is the same for a float
(``1e20``, as TOML writes large numbers) as for an integer.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Window).validate_python(1_000)
1000
>>> TypeAdapter(Window).validate_python(1e20)
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for function-before[...]
  Value error, 1e+20 is above 10,000,000: a window's events are held in memory ...
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

__all__ = [
    "DAY",
    "HOUR",
    "YEAR",
    "Bytes",
    "Count",
    "Delay",
    "Events",
    "Seconds",
    "Timeout",
    "Window",
    "at_most",
]

HOUR, DAY, YEAR = 3_600, 86_400, 365 * 86_400


def at_most(limit: int, why: str) -> BeforeValidator:
    """Refuse a number above ``limit``, saying ``why``; before parsing, so ``1e20`` is refused
    the same way for an integer setting as for a float one."""

    def check(value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        # An infinity is left to allow_inf_nan, which says it is not a finite number.
        if number and limit < value < math.inf:
            raise ValueError(f"{_shown(value)} is above {limit:,}: {why}")
        return value

    return BeforeValidator(check)


def _shown(value: float) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return f"{value:,}" if value < 10**15 else f"a number of {value.bit_length()} bits"


_IN_MEMORY, _COUNTED, _FEW, _BYTES = 10_000_000, 10**9, 100, 2**30

Window = Annotated[
    int, Field(gt=0, le=_IN_MEMORY), at_most(_IN_MEMORY, "a window's events are held in memory")
]
"""Events a component holds at once: a monitor's window, a race's latest events, the labels
replayed to a challenger, the predictions waiting for their labels."""
Delay = Annotated[
    int, Field(ge=0, le=_IN_MEMORY), at_most(_IN_MEMORY, "the events in between are held in memory")
]
"""Events between two things, 0 or more, the ones in between held in memory (a label's delay)."""
Events = Annotated[
    int, Field(gt=0, le=_COUNTED), at_most(_COUNTED, "a count of events past a billion is a typo")
]
"""Events counted before something happens: a checkpoint, a judgement, a tuning."""
Count = Annotated[int, Field(gt=0, le=_FEW), at_most(_FEW, "each one is work done again")]
"""A few things that each cost work: attempts, challengers."""
Bytes = Annotated[
    int, Field(gt=0, le=_BYTES), at_most(_BYTES, "a message or a body is held in memory whole")
]
Timeout = Annotated[
    float,
    Field(gt=0, le=HOUR),
    at_most(HOUR, "a wait of more than an hour is a hang, not a time-out"),
]
"""Seconds something waits for an answer."""
Seconds = Annotated[
    float, Field(gt=0, le=YEAR), at_most(YEAR, "nothing is kept for more than a year")
]
"""Seconds something is kept or remembered."""
