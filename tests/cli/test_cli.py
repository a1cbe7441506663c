"""The command line: help, config errors, topics, running components, the demo on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meander.bus import connect_bus
from meander.cli.app import app
from meander.config import Settings
from meander.consumers import COMPONENTS, assembly
from meander.exceptions import ConfigError

runner = CliRunner()
ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEANDER_CONFIG", "MEANDER_KAFKA_BOOTSTRAP", "MEANDER_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "run", "serve", "topics", "config", "infra"):
        assert command in result.output


def test_a_bad_config_stops_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("api_port = 'eighty'\n")
    result = runner.invoke(app, ["config", "check", "-c", str(bad)])
    assert result.exit_code == 2
    assert "api_port: Input should be a valid integer" in result.output


STREAM = """
[[streams]]
name = "shop"
task = "binary"
features = { amount = "numeric", country = "categorical" }
"""


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ('model = "os.system"', "streams.0.model: model spec 'os.system' is refused at"),
        (
            'model = "linear_model.LinearRegression"',
            "streams.0.model: the LinearRegression model is not a classifier",
        ),
        (
            'model = "preprocessing.StandardScaler | linear_model.LogisticRegression"',
            "streams.0.model: cannot learn an event of the stream's features (amount: numeric, "
            "country: categorical) and label True: TypeError: unsupported operand type(s) for -:",
        ),
        ('candidates = ["tree.Nope"]', "streams.0.candidates.0: model spec 'tree.Nope'"),
        (
            'drift.data_detector = "drift.Nope"',
            "streams.0.drift.data_detector: model spec 'drift.Nope'",
        ),
    ],
)
def test_a_model_that_cannot_serve_its_stream_stops_every_command_using_it(
    tmp_path: Path, setting: str, problem: str
) -> None:
    """Each was accepted by config check, and a learner then failed every step, or
    dead-lettered every label, for as long as it ran."""
    bad = tmp_path / "bad.toml"
    bad.write_text(f"{STREAM}{setting}\n")
    for command in (["config", "check"], ["run", "learner"], ["run", "all"], ["serve"]):
        result = runner.invoke(app, [*command, "-c", str(bad)])
        assert result.exit_code == 2, (command, result.output)
        assert problem in " ".join(result.output.split()), (command, result.output)


def test_a_model_that_cannot_answer_without_an_optional_feature_stops_config_check(
    tmp_path: Path,
) -> None:
    """compose.Select raises KeyError on an event without one of its features, which the
    schema lets in: every such event was dead-lettered, its label too."""
    select = (
        "(compose.Select('amount') | preprocessing.StandardScaler) + (compose.Select('country')"
        " | preprocessing.OneHotEncoder()) | linear_model.LogisticRegression"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(
        STREAM.replace(
            'country = "categorical"', 'country = {type = "categorical", required = false}'
        )
        + f'model = "{select}"\n'
    )
    result = runner.invoke(app, ["config", "check", "-c", str(bad)])
    assert result.exit_code == 2, result.output
    assert (
        "streams.0.model: cannot answer an event without its optional features (country): "
        "KeyError: 'country'" in " ".join(result.output.split())
    )


def test_topics_create_on_the_embedded_bus() -> None:
    result = runner.invoke(app, ["topics", "create", "-c", str(ROOT / "deploy/meander.toml")])
    assert result.exit_code == 0, result.output
    assert "agrawal.events\t3 partition(s)" in result.output
    assert "meander.deadletter\t1 partition(s)" in result.output


@pytest.mark.integration
def test_topics_create_says_what_an_existing_topic_has(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It printed the configured count (3) for a topic a user had made with 1.
    name = f"made{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MEANDER_KAFKA_BOOTSTRAP", kafka_bootstrap)
    with connect_bus(Settings(kafka_bootstrap=kafka_bootstrap)) as bus:
        bus.create_topics({f"{name}.events": 1})
    config = tmp_path / "meander.toml"
    config.write_text(
        f'[[streams]]\nname = "{name}"\ntask = "binary"\npartitions = 3\n'
        'features = { x = "numeric" }\n'
    )

    result = runner.invoke(app, ["topics", "create", "-c", str(config)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"{name}.events\t1 partition(s) (it existed; the config asks for 3)" in lines
    assert f"{name}.feedback\t3 partition(s)" in lines


def test_run_refuses_an_unknown_component() -> None:
    result = runner.invoke(app, ["run", "scheduler"])
    assert result.exit_code == 2
    assert "Invalid value" in result.output and "scheduler" in result.output


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[str, ...], Settings]]:
    """What ``meander run`` asked meander.consumers.assembly to run, instead of running it."""
    calls: list[tuple[tuple[str, ...], Settings]] = []

    def run(names: Sequence[str], settings: Settings) -> None:
        calls.append((tuple(names), settings))

    monkeypatch.setattr(assembly, "run", run)
    return calls


def test_run_all_runs_every_component_in_one_process(
    started: list[tuple[tuple[str, ...], Settings]],
) -> None:
    result = runner.invoke(app, ["run", "all"])
    assert result.exit_code == 0, result.output
    assert [names for names, _ in started] == [COMPONENTS]


def test_run_one_component_with_the_settings_of_the_config_file(
    started: list[tuple[tuple[str, ...], Settings]],
) -> None:
    result = runner.invoke(app, ["run", "learner", "-c", str(ROOT / "deploy/meander.toml")])
    assert result.exit_code == 0, result.output
    [(names, settings)] = started
    assert names == ("learner",)
    assert "agrawal" in [stream.name for stream in settings.streams]


def test_run_reports_what_went_wrong_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(names: Sequence[str], settings: Settings) -> None:
        raise ConfigError("stream 'x' has no features; add some")

    monkeypatch.setattr(assembly, "run", fail)
    result = runner.invoke(app, ["run", "trainer", "-c", str(ROOT / "deploy/meander.toml")])
    assert result.exit_code == 1
    assert "error: stream 'x' has no features; add some" in result.output


@pytest.mark.parametrize("component", ["learner", "predictor", "trainer", "monitor"])
def test_a_component_with_no_stream_to_run_for_stops_saying_so(
    started: list[tuple[tuple[str, ...], Settings]], tmp_path: Path, component: str
) -> None:
    # Before, it started, said it was built, and did nothing for ever.
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    result = runner.invoke(app, ["run", component, "-c", str(empty)])
    assert result.exit_code == 2, result.output
    assert "nothing to run" in result.output and not started


def test_demo_runs_the_loop_and_dead_letters_on_the_embedded_backends() -> None:
    result = runner.invoke(app, ["demo", "--events", "4000"])
    assert result.exit_code == 0, result.output
    assert "done: 4000 events" in result.output
    assert "3 dead-lettered" in result.output
    assert "champion lineage: v" in result.output


def test_demo_kafka_needs_the_servers_named() -> None:
    result = runner.invoke(app, ["demo", "--kafka"])
    assert result.exit_code == 2
    assert "MEANDER_KAFKA_BOOTSTRAP" in result.output


@pytest.mark.integration
def test_demo_on_real_kafka_and_redis(
    kafka_bootstrap: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEANDER_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("MEANDER_REDIS_URL", redis_url)
    result = runner.invoke(app, ["demo", "--kafka", "--events", "2000"])
    assert result.exit_code == 0, result.output
    assert "on the Kafka + Redis" in result.output
    assert "done: 2000 events" in result.output


def test_demo_runs_on_a_configured_stream_of_another_name() -> None:
    from meander.config import Settings
    from meander.demo.run import AGRAWAL, run_demo

    stream = AGRAWAL.model_copy(update={"name": f"loans{uuid.uuid4().hex[:6]}"})
    summary = run_demo(Settings(streams=[stream]), events=2_000, echo=False)
    assert summary["stream"] == stream.name
    assert summary["events"] == 2_000 and summary["dead_lettered"] == 3
    # Four concepts in 2,000 events: the loop must notice at least one change.
    assert summary["drifts"] and all(d >= 400 for d in summary["drifts"])


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["serve", "--port", "-1"], "'--port'"),
        (["serve", "--port", "70000"], "'--port'"),
        (["demo", "--events", "-5"], "'--events'"),
        (["backtest", "{csv}", "-t", "y", "--json", "{missing}/report.json"], "--json: cannot"),
        (["backtest", "{csv}", "-t", "y", "--plot", "{missing}/plot.png"], "--plot: cannot"),
        (["predict", "{csv}", "--out", "{missing}/scored.csv"], "--out: cannot write"),
    ],
)
def test_bad_arguments_stop_every_command_before_it_works_naming_the_option(
    tmp_path: Path, args: list[str], problem: str
) -> None:
    # Before: a traceback (a port out of range, a negative number of events), or a whole
    # backtest run and then a traceback because the report's folder did not exist.
    csv = tmp_path / "rows.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    filled = [a.format(csv=csv, missing=tmp_path / "missing") for a in args]

    result = runner.invoke(app, filled)

    assert result.exit_code == 2, result.output
    assert problem in " ".join(result.output.split())
