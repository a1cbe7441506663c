"""Values a CSV left as text, read back as the numbers (or booleans) they are.

CSV has no types: pandas guesses each column's type chunk by chunk, and one value that is not
a number turns a whole chunk's column into text. Batch scoring and the backtest take such
values back one by one, so only the bad value itself is refused by the schema.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["NUMBERS_SHARE", "from_text", "numeric_text_columns"]

NUMBERS_SHARE = 0.9  # a text column this much made of numbers is a numeric column
_TRUTH = {"true": True, "false": False}


def from_text(value: Any, kind: str) -> Any:
    """``value`` as a ``kind`` feature takes it, when it is text that reads as one; else as is.

    pandas types each CSV chunk on its own, so one bad value turns a whole chunk's numbers
    into text; this takes them back, and leaves the bad value for the schema to refuse.

    A whole float as a categorical feature is its integer code: pandas reads a column of codes
    written as ``5.0`` (as pandas writes integers with gaps) as floats, which a categorical
    feature refuses.

    >>> from_text("1.5", "numeric"), from_text("oops", "numeric"), from_text("True", "boolean")
    (1.5, 'oops', True)
    >>> from_text(5.0, "categorical"), from_text(7.5, "categorical")
    (5, 7.5)
    """
    if not isinstance(value, str):
        if kind == "categorical" and type(value) is float and value.is_integer():
            return int(value)
        return value
    if kind == "boolean":
        return _TRUTH.get(value.strip().lower(), value)
    if kind == "numeric":
        try:
            number = float(value)
        except ValueError:
            return value
        # "1e400" reads as an infinity, which JSON carries as null: a missing value.
        return value if math.isinf(number) else number
    return value


def numeric_text_columns(frame: pd.DataFrame) -> list[str]:
    """The text columns of ``frame`` that hold numbers, bar a few bad values.

    >>> numeric_text_columns(pd.DataFrame({"a": ["1.5", "2"], "b": ["x", "1"], "c": [1, 2]}))
    ['a']
    """
    found = []
    for name in frame.columns:
        values = frame[name]
        if not pd.api.types.is_string_dtype(values.dtype):
            continue
        numbers = pd.to_numeric(values, errors="coerce").notna().sum()
        if numbers and numbers >= NUMBERS_SHARE * values.notna().sum():
            found.append(str(name))
    return found
