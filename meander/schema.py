"""A stream's schema, checked on every event, and inferred from a sample when none is given.

The predictor calls :meth:`Schema.violation` once per event, so the checks are compiled into one
closure per feature when the schema is built: a valid value costs a type test and, for numbers,
one chained comparison. Only a value that fails takes the slow path that words the reason.

>>> from meander.config import StreamConfig
>>> stream = StreamConfig(name="credit", task="binary", features={
...     "age": {"type": "numeric", "minimum": 18, "maximum": 120},
...     "car": {"type": "categorical", "categories": ["bike", "car"]},
...     "vip": {"type": "boolean", "required": False}})
>>> schema = Schema(stream)
>>> schema.violation({"age": 40, "car": "bike"}) is None
True
>>> schema.violation({"age": 130, "car": "bike"})
"feature 'age' = 130 is above its maximum 120"
>>> schema.violation({"age": 40, "car": "bike", "colour": "red"})
"unknown feature 'colour'; the schema has: age, car, vip"
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from meander.config import Feature, StreamConfig

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LARGEST", "Schema", "infer_features", "shown"]

# Returns None when the value fits, else the reason. None (missing) is handled before it.
Check = Callable[[Any], str | None]

# The largest finite float: a bound of +-inf would let an infinite value through.
_FINITE = sys.float_info.max
LARGEST = 1e100
"""How far from zero a numeric feature may be unless its own minimum or maximum says more.
Models keep running sums of squares (scalers, Gaussian estimators in trees, ADWIN): one number
beyond ~1e154 makes them infinite, a few beyond 1e150 too, and a model that learned it answers
NaN, or raises, for every event after; a data-drift detector that saw it never works again."""


class Schema:
    """The per-feature checks of one stream, compiled once."""

    def __init__(self, config: StreamConfig) -> None:
        self.stream = config.name
        self.features = dict(config.features)
        self._names = frozenset(self.features)
        self._checks = tuple(
            (name, _compile(name, feature), feature.required)
            for name, feature in self.features.items()
        )
        self._columns = tuple(
            (name, itemgetter(name), _column(feature), feature.required)
            for name, feature in self.features.items()
        )

    def violations(self, batch: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """:meth:`violation` of each of ``batch``.

        The batch is first checked a feature at a time, each check a pass in C over the
        feature's values (their types, their sum, their least and greatest): when every event
        fits, which is the usual case, that is all. Otherwise each event is checked on its own,
        to say why.

        >>> from meander.config import StreamConfig
        >>> schema = Schema(StreamConfig(name="s", task="binary",
        ...                              features={"x": {"type": "numeric", "maximum": 10}}))
        >>> schema.violations([{"x": 1.5}, {"x": 12}])
        [None, "feature 'x' = 12 is above its maximum 10"]
        """
        if self._fit(batch):
            return [None] * len(batch)
        return [self.violation(features) for features in batch]

    def _fit(self, batch: Sequence[Mapping[str, Any]]) -> bool:
        if not all(map(self._names.issuperset, batch)):
            return False
        for name, get, fits, required in self._columns:
            try:
                values = list(map(get, batch))
            except KeyError:  # missing in some: as None
                values = [features.get(name) for features in batch]
            if None in values:
                if required:
                    return False
                values = [value for value in values if value is not None]
            if values and not fits(values):
                return False
        return True

    def violation(self, features: Mapping[str, Any]) -> str | None:
        """None when ``features`` fit the schema, else the first reason they do not."""
        if not self._names.issuperset(features):
            unknown = next(name for name in features if name not in self._names)
            # shown: any client names the fields, and the reason travels in alerts too
            known = ", ".join(sorted(self._names))
            return f"unknown feature {shown(unknown)}; the schema has: {known}"
        for name, check, required in self._checks:
            value = features.get(name)
            if value is None:
                if required:
                    return f"feature {name!r} is required"
            elif (reason := check(value)) is not None:
                return reason
        return None


def _column(feature: Feature) -> Callable[[list[Any]], bool]:
    """Whether every one of a batch's values of ``feature`` (none of them None) fits it."""
    if feature.type == "numeric":
        low, high = _bounds(feature.minimum, feature.maximum)

        def numbers(values: list[Any]) -> bool:
            kinds = set(map(type, values))
            if not _NUMBERS.issuperset(kinds):
                return False
            try:
                total = sum(values)  # NaN or an infinity anywhere makes it NaN or infinite
            except OverflowError:  # an integer beyond a double among floats
                return False
            if total - total != 0:
                return False
            return bool(low <= min(values) and max(values) <= high)

        return numbers
    if feature.type == "categorical":
        allowed = None if feature.categories is None else frozenset(feature.categories)

        def categories(values: list[Any]) -> bool:
            kinds = _CATEGORIES.issuperset(map(type, values))
            return kinds and (allowed is None or allowed.issuperset(values))

        return categories
    return lambda values: _BOOLEAN.issuperset(map(type, values))


_NUMBERS = frozenset({float, int})
_CATEGORIES = frozenset({str, int})
_BOOLEAN = frozenset({bool})


def _compile(name: str, feature: Feature) -> Check:
    if feature.type == "numeric":
        return _numeric(name, feature.minimum, feature.maximum)
    if feature.type == "categorical":
        return _categorical(name, feature.categories)
    return _boolean(name)


def _numeric(name: str, minimum: float | None, maximum: float | None) -> Check:
    low, high = _bounds(minimum, maximum)

    def check(value: Any) -> str | None:
        kind = type(value)
        # NaN fails every comparison and +-inf lies outside the finite bounds: one test for all.
        if (kind is float or kind is int) and low <= value <= high:
            return None
        return _numeric_reason(name, value, minimum, maximum)

    return check


def _bounds(minimum: float | None, maximum: float | None) -> tuple[float, float]:
    """The accepted range: a feature's own bounds (never beyond the finite floats), else
    +-LARGEST."""
    low = -LARGEST if minimum is None else max(minimum, -_FINITE)
    high = LARGEST if maximum is None else min(maximum, _FINITE)
    return low, high


def _numeric_reason(
    name: str, value: Any, minimum: float | None, maximum: float | None
) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"feature {name!r} must be a number, got {shown(value)} ({type(value).__name__})"
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the floats (JSON allows any number of digits)
        number = float("inf")
    if not -_FINITE <= number <= _FINITE:
        return f"feature {name!r} must be a finite number, got {shown(value)}"
    if (minimum is None and number < -LARGEST) or (maximum is None and number > LARGEST):
        return (
            f"feature {name!r} = {shown(value)} is beyond +-{LARGEST:g}: a model's running "
            "variances overflow on it and it would answer NaN from then on; scale the feature, "
            "or give it a minimum and a maximum to accept such numbers"
        )
    if minimum is not None and number < minimum:
        return f"feature {name!r} = {shown(value)} is below its minimum {_number(minimum)}"
    if maximum is not None and number > maximum:
        return f"feature {name!r} = {shown(value)} is above its maximum {_number(maximum)}"
    return None  # a numpy scalar or another Real within bounds


def _categorical(name: str, categories: list[str | int] | None) -> Check:
    allowed = None if categories is None else frozenset(categories)
    listed = ", ".join(shown(c) for c in (categories or [])[:20])
    if categories is not None and len(categories) > 20:
        listed += f", ... ({len(categories)} in all)"

    def check(value: Any) -> str | None:
        kind = type(value)
        # The type test comes first: True == 1 and 1.0 == 1 would pass the membership test.
        if kind is not str and kind is not int:
            if kind is bool or not isinstance(value, numbers.Integral):
                return (
                    f"feature {name!r} must be a string or an integer category, "
                    f"got {shown(value)} ({kind.__name__})"
                )
            value = int(value)  # a numpy integer, as pandas hands them out
        if allowed is None or value in allowed:
            return None
        return f"feature {name!r} = {shown(value)} is not one of its categories: {listed}"

    return check


def _boolean(name: str) -> Check:
    def check(value: Any) -> str | None:
        if value is True or value is False:
            return None
        return f"feature {name!r} must be true or false, got {shown(value)}"

    return check


def shown(value: Any) -> str:
    """``value`` as a reason quotes it: short, and never failing, whatever a sender put in it.

    >>> shown("x" * 100), shown(10**5000)
    ("'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...", 'an integer of 16610 bits')
    """
    if isinstance(value, int) and value.bit_length() > 128:  # repr of a huge one may raise
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(bound: float) -> str:
    # 120 for 120.0, but 1e+200 rather than its 201 digits
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e16 else str(bound)


# A number that only grows over this many values is a row id or a clock, not a feature. Used
# as features (a row id and epoch seconds beside the columns of five drifting streams of 15,000
# to 20,000 rows, `meander backtest`), they raised 58-78 data-drift alerts a stream (0-1
# without), and moved served accuracy by -0.010, -0.006, -0.003, 0.000 and +0.030.
COUNTER_MIN_DISTINCT = 20


def infer_features(
    frame: pd.DataFrame, *, categorical_max: int = 50, integer_categorical_max: int = 20
) -> dict[str, Feature]:
    """A schema guessed from a sample: drop the label column from ``frame`` first.

    - bool columns (also object columns holding only booleans) are boolean;
    - text and ``category`` columns with at most ``categorical_max`` distinct values are
      categorical; those with more look like identifiers or free text and are left out, so
      compare the result's keys with the columns to see what was dropped;
    - integer columns (also float columns holding only whole numbers, which is what pandas makes
      of an integer column with gaps) with at most ``integer_categorical_max`` distinct values are
      categorical codes, other numeric columns are numeric;
    - a column with any missing value is not required; one with no value at all is left out,
      its type unknown (pandas types it as integers, which would make a categorical feature
      refusing every number once its values come);
    - a numeric column that never falls over the sample while taking at least
      ``COUNTER_MIN_DISTINCT`` values is a row id or a clock (epoch seconds): left out, since
      each later value lies past all a model learned from, and the monitor would find its
      distribution changed in every window.

    Bounds and category lists are not inferred: a sample's range is not a rule of the stream.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [31.5, 40.0, None], "car": ["bike", "car", "car"],
    ...                       "zipcode": [1, 2, 1], "vip": [True, False, True]})
    >>> {name: (f.type, f.required) for name, f in infer_features(frame).items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'age': ('numeric', False), 'car': ('categorical', True),
     'zipcode': ('categorical', True), 'vip': ('boolean', True)}
    """
    features: dict[str, Feature] = {}
    for column in frame.columns:
        values = frame[column]
        present = values.dropna()
        kind = _infer_type(present, categorical_max, integer_categorical_max)
        if kind is not None:
            features[str(column)] = Feature(type=kind, required=len(present) == len(values))
    return features


def _infer_type(present: pd.Series[Any], categorical_max: int, integer_max: int) -> str | None:
    import pandas as pd  # here: components that only check events start without it

    if present.empty:
        return None
    distinct = present.nunique()
    if pd.api.types.is_bool_dtype(present.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(present.dtype):
        if distinct >= COUNTER_MIN_DISTINCT and present.is_monotonic_increasing:
            return None  # a row id or a clock
        whole = pd.api.types.is_integer_dtype(present.dtype) or bool(
            (present % 1 == 0).all() and len(present)
        )
        return "categorical" if whole and distinct <= integer_max else "numeric"
    if len(present) and all(type(value) is bool for value in present):
        return "boolean"
    if isinstance(present.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(
        present.dtype
    ):
        return "categorical" if distinct <= categorical_max else None
    return None  # datetimes, intervals and the like are not model features
