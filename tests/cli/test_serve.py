"""``meander keys new`` and the checks ``meander serve`` makes before it binds a port."""

from __future__ import annotations

import re
import tomllib

import pytest
from typer.testing import CliRunner

from meander.cli.app import app
from meander.config.service import ServiceSettings
from meander.services.auth import ApiKeys

runner = CliRunner()


@pytest.fixture(autouse=True)
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEANDER_CONFIG", "MEANDER_KAFKA_BOOTSTRAP", "MEANDER_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_a_new_key_comes_with_the_config_that_accepts_it() -> None:
    result = runner.invoke(app, ["keys", "new", "--name", "ci", "--scopes", "read,publish"])
    assert result.exit_code == 0, result.output
    key = re.search(r"(mnd_\S+)", result.output)
    assert key is not None
    entry = result.output[result.output.index("[[service.api_keys]]") :]
    service = ServiceSettings(**tomllib.loads(entry)["service"])
    caller = ApiKeys(service.api_keys, []).caller(key.group(1))
    assert caller is not None
    assert (caller.name, caller.may("publish"), caller.may("admin")) == ("ci", True, False)
    assert key.group(1) not in entry  # only the digest goes in the config


def test_an_unknown_scope_is_refused() -> None:
    result = runner.invoke(app, ["keys", "new", "--name", "ci", "--scopes", "read,root"])
    assert result.exit_code == 2
    assert "unknown scope(s) root" in result.output


def test_serve_refuses_an_unknown_component() -> None:
    result = runner.invoke(app, ["serve", "--with", "learner,oracle"])
    assert result.exit_code == 2
    assert "unknown component(s) oracle" in result.output


def test_serve_runs_with_request_deadlines_and_a_connection_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    ran: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    protocol = ran["http"]
    assert getattr(protocol, "header_seconds", None) == 10.0
    assert getattr(protocol, "request_seconds", None) == 60.0
    assert hasattr(ran["ws"], "_reap")  # a stalled WebSocket is cut
