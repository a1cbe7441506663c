"""Hostile and broken input for the fuzz suites: values no well-behaved writer sends.

:func:`json_text` writes JSON the way a careless or hostile writer might: NaN and Infinity as
bare words, numbers beyond a double, lone surrogates, bytes that are not UTF-8, nesting deeper
than any parser takes. The strategies draw such values, alone or inside ordinary JSON, and
times on both sides of what is accepted.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import strategies as st

# Hypothesis warns when the global random state changes while it draws an example, taking it for
# a strategy's doing. In the fuzz suites the Kafka clients of the test process (and the server's,
# where it runs in the process) change it from threads of their own, for jittered retries, which
# a loaded machine makes more frequent: a run of test_openapi failed so, no fault found. A
# strategy that drew from the global state would change it at every draw, and warn every run.
OTHER_THREADS_USE_RANDOM = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

__all__ = [
    "HOSTILE_TOKENS",
    "OTHER_THREADS_USE_RANDOM",
    "Raw",
    "event_body",
    "features",
    "hostile_values",
    "json_text",
    "scalars",
    "time_accepted",
    "times_refused",
]


class Raw(bytes):
    """Bytes :func:`json_text` writes as they are: a token no JSON encoder would produce."""


HOSTILE_TOKENS = [
    Raw(b"NaN"),
    Raw(b"Infinity"),
    Raw(b"-Infinity"),
    Raw(b"1e999"),
    Raw(b"9" * 400),  # an integer beyond a double
    Raw(b'"\\ud800"'),  # a lone surrogate, escaped
    Raw(b'"\\udc00x"'),
    Raw(b'"\xff\xfe"'),  # not UTF-8
    Raw(b'"\xed\xa0\x80"'),  # a surrogate encoded in UTF-8
    Raw(b"[" * 3_000 + b"]" * 3_000),  # deeper than any parser takes
    Raw(b'{"a": 1, "a": 2}'),
    Raw(b"tru"),
    Raw(b""),
]


def json_text(value: Any) -> bytes:
    """``value`` as JSON text, :class:`Raw` parts as they are, NaN and infinities as words."""
    if isinstance(value, Raw):
        return bytes(value)
    if value is None or isinstance(value, bool):
        return b"null" if value is None else (b"true" if value else b"false")
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        if math.isnan(value):
            return b"NaN"
        if math.isinf(value):
            return b"Infinity" if value > 0 else b"-Infinity"
        return repr(value).encode()
    if isinstance(value, str):
        return json.dumps(value).encode()
    if isinstance(value, list | tuple):
        return b"[" + b",".join(json_text(v) for v in value) + b"]"
    if isinstance(value, dict):
        pairs = (json_text(str(k)) + b":" + json_text(v) for k, v in value.items())
        return b"{" + b",".join(pairs) + b"}"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# Good events are drawn in bulk from a seed: hypothesis spends its draws on the hostile ones.


def features(rng: random.Random) -> dict[str, Any]:
    """The features of a good event of the fuzz suites' stream (amount, country, vip)."""
    drawn: dict[str, Any] = {"amount": rng.choice([rng.uniform(0, 1e6), rng.randint(0, 10**6), 0])}
    if rng.random() < 0.8:
        drawn["country"] = rng.choice(["NL", "FR", None])
    if rng.random() < 0.5:
        drawn["vip"] = rng.random() < 0.5
    return drawn


def time_accepted(rng: random.Random) -> str | None:
    """A time inside the window, or None: the past since 1970, now, a minute ahead."""
    now = datetime.now(UTC)
    return rng.choice(
        [
            None,
            _iso(datetime(1971, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 19_000))),
            _iso(now - timedelta(days=1)),
            _iso(now + timedelta(minutes=1)),
            "2024-05-01T12:00:00",  # no offset: taken as UTC
        ]
    )


def event_body(rng: random.Random) -> dict[str, Any]:
    """A good event without its id: features, and a time or an entity now and then."""
    body: dict[str, Any] = {"features": features(rng)}
    if (moment := time_accepted(rng)) is not None:
        body["time"] = moment
    if rng.random() < 0.2:
        body["entity"] = f"customer-{rng.randint(1, 99)}"
    return body


def times_refused() -> st.SearchStrategy[str]:
    """Times outside the window: far ahead, an hour or two ahead, before 1970."""
    now = datetime.now(UTC)
    return st.sampled_from(
        [
            "2099-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            _iso(now + timedelta(hours=2)),
            _iso(now + timedelta(minutes=50)),
            "1969-12-31T23:59:59Z",
            "1960-01-01T00:00:00+05:00",
            "0001-01-01T00:00:00Z",
        ]
    )


def scalars() -> st.SearchStrategy[Any]:
    """Any JSON scalar, the hostile ones often."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**63, max_value=2**300),
        st.floats(),
        st.text(max_size=20),
        st.integers(300, 3_000).map(lambda n: ("ä€𝄞\x00" * n)[:n]),  # long: drawn cheaply
        st.sampled_from(["", "\x00", "NL", "maybe", "True", "1", "💥", "\u202e", "a" * 201]),
        st.sampled_from(HOSTILE_TOKENS),
        times_refused(),
    )


def hostile_values() -> st.SearchStrategy[Any]:
    """Scalars, and arrays and objects of them, a few levels deep."""
    return st.recursive(
        scalars(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=5,
    )
