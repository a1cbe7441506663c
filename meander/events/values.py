"""The values payloads are made of: ids, times, labels and features, each checked as cheaply as
its type allows, for every event passes through here.

>>> len(new_id()), now().tzinfo
(32, datetime.timezone.utc)
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["MOMENT_SCHEMA", "Features", "Label", "Moment", "Value", "new_id", "now"]

Value = bool | int | float | str
Label = bool | int | float | str

# The version and variant bits of a UUID4 (RFC 9562), over 128 random bits.
_UUID4_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
# Ids must be unique, not secret: a generator of our own, seeded from os.urandom, costs a fraction
# of a system call per id. Our own so that seeding the global one (producers do) never repeats ids;
# reseeded in a forked child so that parent and child never draw the same ones.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random id: a UUID4 as 32 hex digits, what ``uuid.uuid4().hex`` gives, at less cost.

    >>> import uuid
    >>> uuid.UUID(new_id()).version
    4
    """
    # to_bytes().hex() formats the 32 digits in half the time an f-string takes.
    return (_IDS.getrandbits(128) & _UUID4_KEEP | _UUID4_SET).to_bytes(16, "big").hex()


_NAMES = frozenset({str})
_PLAIN = frozenset({bool, int, float, str, type(None)})


def _features(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
    # Names of exactly str and values of exactly these types come out of pydantic's union
    # unchanged, so checking the types gives its answer at a fraction of its cost (numpy's
    # numbers, say, are valid but converted, and get the full validation like anything else).
    if (
        type(value) is dict
        and _NAMES.issuperset(map(type, value))
        and _PLAIN.issuperset(map(type, value.values()))
    ):
        return dict(value)
    return validate(value)


# Pydantic tries a union's members in order, and features are mostly numbers: in JSON, floats
# first validates them in half the time, to the same values (smart mode keeps the exact type).
# Only the order of the errors about a bad value changes; decode reports them as declared.
_JSON_FEATURES = dict[str, float | int | bool | str | None]


class _FastFeatures:
    """Plain features built in Python take the shortcut, JSON its own union order."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        declared = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=handler.generate_schema(_JSON_FEATURES),
            python_schema=core_schema.no_info_wrap_validator_function(_features, declared),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The JSON schema says what was declared, in the declared order.
        return handler(schema["python_schema"])  # type: ignore[typeddict-item]


Features = Annotated[dict[str, Value | None], _FastFeatures]
"""A payload's features: validated as ``dict[str, Value | None]``, plain ones at less cost."""


MOMENT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number", "description": "Unix time: seconds, milliseconds above 2e10"},
    ]
}
Moment = Annotated[datetime, WithJsonSchema(MOMENT_SCHEMA, mode="validation")]
"""A time as it is read: RFC 3339, or a Unix time in seconds (in milliseconds above 2e10, as
JavaScript's ``Date.now()`` gives it), the way pydantic reads a number as a datetime. Kafka
producers send both, so HTTP takes both too, and the OpenAPI says so; it is written as RFC 3339.

>>> from pydantic import TypeAdapter
>>> [TypeAdapter(Moment).validate_python(t).isoformat() for t in (1_767_225_600, 1_767_225_600_000)]
['2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00']
"""
