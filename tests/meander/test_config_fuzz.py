"""Any configuration either loads or stops with a ConfigError naming the key: never a traceback.

The drawn configurations use the settings' own keys, nested as the settings nest them, with
values a careless or hostile file might hold: huge and negative numbers, floats for integers,
NaN, empty and blank text, wrong types. A stream keeps a name, a task and features, so that the
checks past them run too. What loads also passes through `meander config check`'s model trial.
"""

from __future__ import annotations

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
