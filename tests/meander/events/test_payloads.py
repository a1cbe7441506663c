"""The payloads' shortcuts give what the plain pydantic models would: ids, feature validation."""

from __future__ import annotations

import enum
import os
import random
import re
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from meander.events import FeatureEvent, Value, new_id

FULL = TypeAdapter(dict[str, Value | None])


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def test_new_id_is_a_uuid4_in_hex() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert {len(text) for text in ids} == {32}  # leading zeros kept
    for text in ids[:100]:
        assert re.fullmatch(r"[0-9a-f]{32}", text)
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_seeding_the_global_generator_does_not_repeat_ids() -> None:
    random.seed(7)
    first = new_id()
    random.seed(7)
    assert new_id() != first


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        theirs = pipe.read().decode()
    assert len(theirs) == 32
    assert theirs != new_id()


PLAIN: list[dict[Any, Any]] = [
    {},
    {"amount": 12.5, "age": 3, "new": True, "country": "FR", "missing": None},
    {"nan": float("nan"), "big": 2**80, "negative": -0.0, "empty": ""},
]
UNUSUAL: list[dict[Any, Any]] = [
    {"x": np.float64(1.5)},
    {"x": np.int64(3)},
    {"x": Decimal("1.25")},
    {"x": Colour.RED},
    {"x": Name("kept")},
    {Name("key"): 1.0},
    {"x": b"bytes"},
]
INVALID: list[Any] = [
    {"x": [1]},
    {"x": {"nested": 1}},
    {1: 2.0},
    [("x", 1.0)],
    "not a mapping",
]


@pytest.mark.parametrize("features", PLAIN + UNUSUAL, ids=repr)
def test_features_validate_as_the_full_union_does(features: dict[Any, Any]) -> None:
    event = FeatureEvent(id="e", features=features)
    expected = FULL.validate_python(features)
    assert event.features.keys() == expected.keys()
    for name, value in expected.items():
        got = event.features[name]
        assert type(got) is type(value)
        assert got == value or (value != value and got != got)  # NaN is never equal to itself
    assert event.features is not features


@pytest.mark.parametrize("features", INVALID, ids=repr)
def test_invalid_features_fail_as_the_full_union_does(features: Any) -> None:
    with pytest.raises(ValidationError) as ours:
        FeatureEvent(id="e", features=features)
    with pytest.raises(ValidationError) as theirs:
        FULL.validate_python(features)
    assert [(e["loc"][1:], e["msg"]) for e in ours.value.errors()] == [
        (e["loc"], e["msg"]) for e in theirs.value.errors()
    ]


def test_the_event_keeps_its_own_copy_of_the_features() -> None:
    features: dict[str, Value | None] = {"x": 1.0}
    event = FeatureEvent(id="e", features=features)
    features["x"] = 2.0
    assert event.features == {"x": 1.0}


def test_json_validation_and_schema_are_the_full_unions() -> None:
    event = FeatureEvent.model_validate_json(b'{"id": "e", "features": {"a": 1, "b": true}}')
    assert event.features == {"a": 1, "b": True}
    assert [type(v) for v in event.features.values()] == [int, bool]
    schema = FeatureEvent.model_json_schema()["properties"]["features"]
    assert schema == {**FULL.json_schema(), "title": "Features"}
