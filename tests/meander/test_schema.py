"""The schema check on every event, and schema inference from a sample."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from meander.config import StreamConfig
from meander.schema import Schema, infer_features


@pytest.fixture
def schema() -> Schema:
    return Schema(
        StreamConfig(
            name="credit",
            task="binary",
            features={
                "age": {"type": "numeric", "minimum": 18, "maximum": 120},
                "salary": {"type": "numeric", "required": False},
                "car": {"type": "categorical", "categories": ["bike", "car", 3]},
                "city": {"type": "categorical", "required": False},
                "vip": {"type": "boolean", "required": False},
            },
        )
    )


VALID = {"age": 40, "salary": 52_000.5, "car": "bike", "city": "Lyon", "vip": True}


@pytest.mark.parametrize(
    "features",
    [
        VALID,
        {"age": 18, "car": "car"},  # optional features may be absent
        {"age": 120.0, "car": 3, "salary": None, "city": None, "vip": None},
        {"age": 40, "car": "bike", "city": 75},  # an integer category is a category
        {"age": np.float64(40.0), "car": np.int64(3), "salary": np.int64(3)},  # numpy scalars
    ],
)
def test_valid_events_pass(schema: Schema, features: dict[str, Any]) -> None:
    assert schema.violation(features) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"colour": "red"},
            "unknown feature 'colour'; the schema has: age, car, city, salary, vip",
        ),
        ({"age": None}, "feature 'age' is required"),
        ({"age": "abc"}, "feature 'age' must be a number, got 'abc' (str)"),
        ({"age": True}, "feature 'age' must be a number, got True (bool)"),
        ({"salary": math.nan}, "feature 'salary' must be a finite number, got nan"),
        ({"salary": math.inf}, "feature 'salary' must be a finite number, got inf"),
        ({"salary": -math.inf}, "feature 'salary' must be a finite number, got -inf"),
        (
            {"salary": 1e200},
            "feature 'salary' = 1e+200 is beyond +-1e+100: a model's running variances overflow "
            "on it and it would answer NaN from then on; scale the feature, or give it a "
            "minimum and a maximum to accept such numbers",
        ),
        ({"age": 130}, "feature 'age' = 130 is above its maximum 120"),
        ({"age": 17.5}, "feature 'age' = 17.5 is below its minimum 18"),
        ({"car": "boat"}, "feature 'car' = 'boat' is not one of its categories: 'bike', 'car', 3"),
        ({"car": 3.0}, "feature 'car' must be a string or an integer category, got 3.0 (float)"),
        (
            {"city": False},
            "feature 'city' must be a string or an integer category, got False (bool)",
        ),
        ({"vip": 1}, "feature 'vip' must be true or false, got 1"),
        ({"vip": "yes"}, "feature 'vip' must be true or false, got 'yes'"),
    ],
)
def test_each_violation_has_its_reason(schema: Schema, change: dict[str, Any], reason: str) -> None:
    assert schema.violation(VALID | change) == reason


def test_an_unknown_feature_is_named_short_whatever_its_length(schema: Schema) -> None:
    # The reason is quoted in dead letters and in the monitor's schema-violation alert: a
    # 700 kB name made that alert too large to publish.
    reason = schema.violation({"a" * 700_000: 1})
    assert reason is not None and reason.startswith("unknown feature 'aaaa") and len(reason) < 200


def test_a_missing_required_feature_is_reported() -> None:
    schema = Schema(
        StreamConfig(name="s", task="binary", features={"a": "numeric", "b": "numeric"})
    )
    assert schema.violation({"a": 1.0}) == "feature 'b' is required"


def test_long_values_and_long_category_lists_are_shortened() -> None:
    categories = [f"c{i}" for i in range(30)]
    schema = Schema(
        StreamConfig(
            name="s",
            task="multiclass",
            features={"c": {"type": "categorical", "categories": categories}},
        )
    )
    reason = schema.violation({"c": "x" * 500})
    assert reason is not None
    assert len(reason) < 300
    assert reason.endswith("'c19', ... (30 in all)")


def test_infer_features_types_and_required() -> None:
    frame = pd.DataFrame(
        {
            "salary": [50_000.5, 61_000.0, 72_000.25, 80_000.0],
            "age": list(range(20, 24)),
            "elevel": [0, 1, 4, 1],
            "loan": [1.0, None, 3.0, 2.0],  # an integer column with a gap, as pandas reads it
            "car": ["bike", "car", "car", None],
            "vip": [True, False, True, True],
            "member": [True, None, False, True],
            "colour": pd.Categorical(["red", "blue", "red", "red"]),
            "order_id": ["a1", "a2", "a3", "a4"],
            "seen": pd.to_datetime(["2024-01-01"] * 4),
            "later": pd.array([None] * 4, dtype="Int64"),  # no value yet, as pandas reads it
        }
    )
    features = infer_features(frame, categorical_max=3, integer_categorical_max=3)
    assert {name: (f.type, f.required) for name, f in features.items()} == {
        "salary": ("numeric", True),
        "age": ("numeric", True),  # four distinct whole numbers, over the limit of three
        "elevel": ("categorical", True),
        "loan": ("categorical", False),
        "car": ("categorical", False),
        "vip": ("boolean", True),
        "member": ("boolean", False),
        "colour": ("categorical", True),
    }
    assert all(f.minimum is None and f.categories is None for f in features.values())


def test_infer_features_leaves_out_row_ids_and_clocks() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(500_000, 500_040),
            "created": 1_735_689_600 + 30 * (np.arange(40) // 2),  # two events a second
            "amount": rng.normal(100, 20, 40),
            "tenure": np.arange(40) % 21,  # grows, and falls back once
            "steps": np.arange(40) // 3,  # never falls, 14 values: codes, as before
        }
    )
    frame.loc[39, "tenure"] = 0
    features = infer_features(frame)
    # Each later id or time lies past all a model learned from, and the monitor would find
    # the column drifting in every window.
    assert sorted(features) == ["amount", "steps", "tenure"]


def test_inferred_schema_accepts_the_rows_it_came_from() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 20, 200),
            "country": rng.choice(["FR", "DE", "ES"], 200),
            "items": rng.integers(1, 5, 200),
            "flag": rng.random(200) < 0.5,
        }
    )
    schema = Schema(StreamConfig(name="s", task="binary", features=infer_features(frame)))
    rows = [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]
    assert [schema.violation(row) for row in rows] == [None] * len(rows)


_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**300), max_value=10**300) | st.integers(-200, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["bike", "car", "Lyon", ""]),
    st.sampled_from([np.int64(3), np.float64(40.0), 3]),
)
_NAMES = st.sampled_from(["age", "salary", "car", "city", "vip", "colour"])
# Mostly valid events with one value changed or left out, so that a batch often has a single
# problem for the batch check to find; and anything at all now and then.
_FEATURES = st.one_of(
    st.builds(lambda name, value: {**VALID, name: value}, _NAMES, _ANY_VALUE),
    st.builds(lambda name: {k: v for k, v in VALID.items() if k != name}, _NAMES),
    st.dictionaries(_NAMES, _ANY_VALUE, max_size=6),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_FEATURES | st.just(VALID), max_size=8))
@example([VALID, {**VALID, "salary": math.nan}])
@example([{**VALID, "salary": -math.inf}])
@example([{**VALID, "age": True}])
@example([{**VALID, "age": 10**300}])
@example([{**VALID, "salary": 10**300}, VALID])
@example([{**VALID, "salary": np.float64(1.5)}])
@example([{**VALID, "car": np.int64(3)}, {**VALID, "car": 3.0}])
@example([{**VALID, "vip": 1}])
@example([{**VALID, "age": None}])
@example([VALID, {k: v for k, v in VALID.items() if k != "car"}])
def test_a_batch_is_checked_as_each_of_its_events_is(
    schema: Schema, batch: list[dict[str, Any]]
) -> None:
    assert schema.violations(batch) == [schema.violation(features) for features in batch]


def test_an_integer_beyond_a_double_among_floats_fails_its_event_alone() -> None:
    # The batch check sums a column: 1.5 + 10**400 raises OverflowError, which stopped the
    # predictor's step (found by the Kafka fuzz suite).
    schema = Schema(StreamConfig(name="s", task="binary", features={"a": "numeric"}))
    problems = schema.violations([{"a": 1.5}, {"a": 10**400}, {"a": 2}])
    assert problems[0] is None and problems[2] is None
    assert problems[1] == "feature 'a' must be a finite number, got an integer of 1329 bits"
