"""Any configuration, as values or as a file, either loads or stops with a ConfigError naming the
key (or what is wrong with the file): never a traceback.

The drawn configurations use the settings' own keys, nested as the settings nest them, with
values a careless or hostile file might hold: huge and negative numbers, floats for integers,
NaN, empty and blank text, wrong types. A stream keeps a name, a task and features, so that the
checks past them run too. What loads also passes through `meander config check`'s model trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from meander.config import TASKS, Feature, Settings, StreamConfig, load_settings
from meander.exceptions import ConfigError
from meander.models.trial import check_models

SCALARS = st.one_of(
    st.sampled_from([0, -1, 1, 2**63, 10**30, 1e20, 1e300, -1e20, 0.5, float("nan")]),
    st.sampled_from(["", " ", "x", "1e20", "drift.ADWIN", "binary", None, True, False]),
    st.integers(),
    st.floats(),
    st.text(max_size=4),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
)


def _section(model: type[BaseModel], fixed: dict[str, Any] | None = None, most: int = 2) -> Any:
    """A dict of up to ``most`` of ``model``'s keys (a nested model drawn as a section of its own),
    besides ``fixed``: few enough that a bad value is often the only one."""
    fixed = fixed or {}
    values = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        nested = isinstance(kind, type) and issubclass(kind, BaseModel)
        values[name] = st.one_of(_section(kind), VALUES) if nested else VALUES
    keys = st.lists(st.sampled_from(sorted(set(values) - set(fixed))), max_size=most, unique=True)
    return keys.flatmap(
        lambda chosen: st.fixed_dictionaries({**fixed, **{k: values[k] for k in chosen}})
    )


FEATURES = st.dictionaries(
    st.sampled_from(["x", "", " ", "amount", "id"]),
    st.sampled_from(["numeric", "categorical", "boolean"]) | _section(Feature),
    max_size=2,
)
# Mostly a stream that is right but for a key or two, so that the checks past the first run.
STREAMS = st.one_of(
    st.builds(
        lambda stream, features: stream | {"features": {"x": "numeric", **features}},
        _section(StreamConfig, {"name": st.just("s"), "task": st.sampled_from(TASKS)}),
        st.just({}) | FEATURES,
    ),
    _section(StreamConfig, most=3),
)
TOP = _section(Settings, most=1).map(lambda top: {k: v for k, v in top.items() if k != "streams"})
CONFIGS = st.builds(
    lambda top, streams: top | {"streams": streams},
    st.just({}) | TOP,
    st.lists(STREAMS, max_size=2),
)


@pytest.fixture(autouse=True)
def no_meander_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*Settings.model_fields, "config"]:
        monkeypatch.delenv(f"MEANDER_{name.upper()}", raising=False)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(CONFIGS)
def test_any_config_loads_or_names_the_key(values: dict[str, Any]) -> None:
    try:
        check_models(load_settings(**values))
    except ConfigError as error:
        message = str(error)
        assert message.startswith(("configuration is invalid", "streams.")), message
        assert "Traceback" not in message


# TOML as a hand might write it: sections, known and unknown keys, and every kind of literal,
# some that Python cannot read as they stand (an integer of 5,000 digits, February 30).
LITERALS = st.one_of(
    st.sampled_from(
        [
            *("0", "-1", "1e20", "9" * 5_000, "nan", "-inf", "'x'", '""', "true", "[]"),
            *("[1, 'a']", "{}", "{ x = 1 }", "1979-05-27", "1979-02-30", "0x1F", "1_000"),
            *("'''a'''", "= 1"),
        ]
    ),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
HEADERS = ["[producer]", "[notifier]", "[service]", "[[streams]]", "[streams.drift]", "[x]"]
LINES = st.one_of(
    st.sampled_from(HEADERS),
    st.builds(
        "{} = {}".format,
        st.sampled_from([*Settings.model_fields, *StreamConfig.model_fields, "name", "x"]),
        LITERALS,
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(LINES, max_size=6).map("\n".join) | st.binary(max_size=40).map(repr))
def test_any_config_file_loads_or_says_what_is_wrong(tmp_path: Path, text: str) -> None:
    path = tmp_path / "drawn.toml"
    path.write_text(text)
    try:
        load_settings(path)
    except ConfigError as error:
        assert str(error).startswith(f"config file {path}"), str(error)
