"""meander backtest: a file through the real loop, its report checked against the topics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from meander import topics
from meander.backtest.report import Report, build_report
from meander.backtest.run import BacktestRun, run_backtest
from meander.backtest.stream import infer_task
from meander.bus import TopicPartition
from meander.cli.app import app
from meander.config import Settings
from meander.events import Prediction, decode_batch
from meander.producers import synthetic

runner = CliRunner()
SEA_ROWS = 3_000


@pytest.fixture(autouse=True)
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEANDER_CONFIG", "MEANDER_KAFKA_BOOTSTRAP", "MEANDER_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def write_stream(folder: Path, name: str, rows: int, *, suffix: str = ".csv") -> Path:
    """``rows`` samples of a synthetic stream whose concept changes every third of the way."""
    source = synthetic(name, drift_every=max(rows // 3, 1), seed=7)
    frame = pd.DataFrame([{**s.features, "label": s.label} for s in source.samples(rows)])
    path = folder / f"{name}{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def sea_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stream(tmp_path_factory.mktemp("backtest"), "sea", SEA_ROWS)


@pytest.fixture(scope="module")
def sea_run(sea_csv: Path) -> Iterator[tuple[BacktestRun, Report]]:
    run = run_backtest(sea_csv, target="label")
    yield run, build_report(run)
    run.close()


def champion_answers(run: BacktestRun) -> dict[str, list[Any]]:
    """Every champion prediction on the run's predictions topic, by event id."""
    topic = topics.predictions(run.stream.name)
    bus = run.runtime.bus
    answers: dict[str, list[Any]] = {}
    with bus.assign([TopicPartition(topic, p) for p in range(bus.partitions(topic))]) as reader:
        while messages := reader.consume(5_000, 0.0):
            for envelope in decode_batch(messages)[0]:
                payload = envelope.payload
                assert isinstance(payload, Prediction)
                if payload.role == "champion":
                    answers.setdefault(payload.event_id, []).append(payload.prediction)
    return answers


def quiet_backtest(path: Path) -> tuple[BacktestRun, dict[str, Any], dict[str, list[Any]]]:
    """A backtest of ``path`` without the monitor: the run (closed), its report's data and the
    champion's answers."""
    run = run_backtest(path, target="label", monitor=False)
    try:
        return run, build_report(run).data, champion_answers(run)
    finally:
        run.close()


def test_every_event_gets_exactly_one_champion_prediction(
    sea_run: tuple[BacktestRun, Report],
) -> None:
    run, report = sea_run
    answers = champion_answers(run)
    assert run.events == SEA_ROWS == report.data["events"]
    assert sorted(answers) == sorted(run.event_ids)
    assert all(len(found) == 1 for found in answers.values())
    assert report.data["check"]["consistent"] is True


def test_accuracy_is_that_of_the_predictions_served(sea_run: tuple[BacktestRun, Report]) -> None:
    run, report = sea_run
    answers = champion_answers(run)
    right = sum(
        answers[event_id][0] == label
        for event_id, label in zip(run.event_ids, run.labels, strict=True)
    )
    assert report.data["accuracy"] == right / run.events
    assert report.data["accuracy"] == run.state.served["champion"].report()["accuracy"]
    assert report.data["mae"] is None


def test_decisions_are_placed_on_rows_and_the_lineage_ends_at_the_first_champion(
    sea_run: tuple[BacktestRun, Report],
) -> None:
    run, report = sea_run
    data = report.data
    for key in ("drifts", "data_drifts", "promotions", "rolled_back"):
        assert all(0 <= row < run.events for row in data[key]), key
        assert data[key] == sorted(set(data[key]))
    assert len(data["promotions"]) == data["model_events"].get("promoted", 0) - 1
    assert len(data["drifts"]) <= data["alerts"].get("concept_drift", 0)
    champion = data["champion"]
    assert champion["version"] == run.state.champion
    assert champion["lineage"][0]["version"] == champion["version"]
    assert champion["lineage"][-1]["version"] == 1
    assert str(champion["version"]) in data["versions"]
    assert data["labels"] == run.events
    assert data["events_per_second"] > 0


def test_a_backtest_is_reproducible(sea_csv: Path, sea_run: tuple[BacktestRun, Report]) -> None:
    again = run_backtest(sea_csv, target="label")
    try:
        second = build_report(again)
    finally:
        again.close()
    timing = ("seconds", "events_per_second")
    first = {k: v for k, v in sea_run[1].data.items() if k not in timing}
    assert {k: v for k, v in second.data.items() if k not in timing} == first
    assert second.scores == sea_run[1].scores


def test_the_command_writes_the_report_and_the_plot(sea_csv: Path, tmp_path: Path) -> None:
    out, picture = tmp_path / "report.json", tmp_path / "curve.png"
    result = runner.invoke(
        app,
        ["backtest", str(sea_csv), "--target", "label", "--json", str(out), "--plot", str(picture)],
    )
    assert result.exit_code == 0, result.output
    assert "served accuracy:" in result.output
    data = json.loads(out.read_text())
    for key in (
        "events",
        "accuracy",
        "events_per_second",
        "drifts",
        "promotions",
        "rolled_back",
        "champion",
        "versions",
        "dead_letters",
    ):
        assert key in data, key
    assert data["events"] == SEA_ROWS
    assert data["accuracy"] == data["check"]["accuracy"]
    assert data["champion"]["lineage"][0]["version"] == data["champion"]["version"]
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_labels_come_late_with_a_label_delay(tmp_path: Path) -> None:
    path = write_stream(tmp_path, "sea", 1_500)
    # An untrained tree answers nothing (None), which shows when the first labels came.
    stream = synthetic("sea").stream_config(
        "sea", model="tree.HoeffdingTreeClassifier", learning={"publish_every": 200}
    )
    settings = Settings(streams=[stream])
    runs = {
        delay: run_backtest(path, target="label", settings=settings, label_delay=delay)
        for delay in (0, 1_000)
    }
    try:
        first = {delay: champion_answers(run) for delay, run in runs.items()}
        early = {
            delay: [answers[event_id][0] for event_id in runs[delay].event_ids[:1_000]]
            for delay, answers in first.items()
        }
        # No label is out before 1,000 events went by: nothing has learnt, nothing answers.
        assert all(answer is None for answer in early[1_000])
        assert any(answer is not None for answer in early[0])
        for run in runs.values():
            report = build_report(run).data
            assert report["labels"] == 1_500  # the labels still pending at the end arrive too
            assert report["check"]["consistent"] is True
        assert build_report(runs[1_000]).data["label_delay"] == 1_000
    finally:
        for run in runs.values():
            run.close()


def test_the_command_takes_a_label_delay(sea_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "late.json"
    result = runner.invoke(
        app,
        ["backtest", str(sea_csv), "-t", "label", "--label-delay", "250", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["label_delay"] == 250
    assert data["labels"] == SEA_ROWS


def test_regression_reports_mae_from_a_parquet_file(tmp_path: Path) -> None:
    path = write_stream(tmp_path, "friedman", 1_000, suffix=".parquet")
    run, report, answers = quiet_backtest(path)
    errors = [
        abs(label - (answers[event_id][0] or 0.0))
        for event_id, label in zip(run.event_ids, run.labels, strict=True)
    ]
    assert report["task"] == "regression" and report["accuracy"] is None
    assert report["mae"] == pytest.approx(sum(errors) / len(errors))
    assert report["check"]["consistent"] is True


def test_columns_that_are_not_features_are_left_out(tmp_path: Path) -> None:
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path)
    frame.insert(0, "ticket", [f"t-{i}" for i in range(len(frame))])  # an identifier
    frame.to_csv(path, index=False)
    run, report, _ = quiet_backtest(path)
    assert report["ignored_columns"] == ["ticket"]
    assert sorted(run.stream.features) == ["x0", "x1", "x2"]
    assert report["dead_letters"] == 0 and report["check"]["consistent"] is True


def test_a_row_id_and_an_epoch_clock_are_left_out(tmp_path: Path) -> None:
    # Used as features, they raised two data-drift alerts a window (the monitor's reference
    # holds none of their later values) and moved served accuracy either way.
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path)
    frame.insert(0, "row_id", range(7_000, 7_300))
    frame.insert(1, "created", [1_735_689_600 + 60 * i for i in range(300)])
    frame.to_csv(path, index=False)
    run, report, _ = quiet_backtest(path)
    assert report["ignored_columns"] == ["row_id", "created"]
    assert sorted(run.stream.features) == ["x0", "x1", "x2"]


def test_a_number_column_with_a_bad_value_is_still_numeric(tmp_path: Path) -> None:
    from meander.backtest.stream import infer_stream
    from meander.producers.replay import FileSource

    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path, dtype={"x0": object})
    frame.loc[10, "x0"] = "oops"
    frame.to_csv(path, index=False)
    stream = infer_stream(FileSource(path, target="label"), "sea")
    assert stream.features["x0"].type == "numeric" and stream.features["x0"].required


def test_a_bad_row_is_dead_lettered(tmp_path: Path) -> None:
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path, dtype={"x0": object})
    frame.loc[10, "x0"] = "oops"
    frame.to_csv(path, index=False)
    run, report, answers = quiet_backtest(path)
    assert run.event_ids[10] not in answers and len(answers) == 299
    assert report["check"]["events_dead_lettered"] == 1
    assert report["check"]["consistent"] is True
    assert any("'x0' must be a number" in reason for reason in report["dead_letter_reasons"])


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["missing.csv", "-t", "label"], "does not exist"),
        (["{sea}", "-t", "answer"], "no target column 'answer'"),
        (["{sea}", "-t", "label", "--model", "tree.NoSuchTree"], "tree.NoSuchTree"),
        (["{sea}", "-t", "label", "--model", "linear_model.LinearRegression"], "not a classifier"),
        (["{sea}", "-t", "label", "-c", "{bad_config}"], "invalid"),
        (["{sea}", "-t", "label", "-c", "{other_stream}"], "lacks the required feature"),
        (["{sea}", "-t", "label", "-c", "{other_stream}", "--stream", "nope"], "unknown stream"),
    ],
)
def test_bad_input_exits_2_and_says_why(
    arguments: list[str], says: str, sea_csv: Path, tmp_path: Path
) -> None:
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[[streams]]\nname = 'sea'\ntask = 'binary'\nfeatures = {x0 = 'nope'}\n")
    other_stream = tmp_path / "other.toml"
    other_stream.write_text(
        "[[streams]]\nname = 'loans'\ntask = 'binary'\nfeatures = {amount = 'numeric'}\n"
    )
    files = {"sea": sea_csv, "bad_config": bad_config, "other_stream": other_stream}
    arguments = [argument.format(**files) for argument in arguments]
    result = runner.invoke(app, ["backtest", *arguments])
    assert result.exit_code == 2, result.output
    assert says in result.output


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([True, False, True], "binary"),
        (["yes", "no", None], "multiclass"),  # a binary stream's models take False and True
        ([3, 7, 3], "multiclass"),
        ([0, 1, 1, 0], "binary"),
        ([1.0, None, 0.0], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([1, 2, 3, 4], "multiclass"),
        (list(range(50)), "regression"),
        ([0.5, 1.25, 3.0], "regression"),
    ],
)
def test_the_task_is_inferred_from_the_target(values: list[Any], task: str) -> None:
    assert infer_task(pd.Series(values, name="y")) == task


def test_a_target_of_two_words_is_learned(tmp_path: Path) -> None:
    # Inferred binary, its labels "no" and "yes" were none of the stream's classes (False and
    # True): all 300 dead-lettered, nothing learned, the report inconsistent.
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path)
    frame["label"] = frame["label"].map({True: "yes", False: "no"})
    frame.to_csv(path, index=False)
    run, report, _ = quiet_backtest(path)
    assert run.stream.task == "multiclass"
    assert report["labels"] == 300 and report["dead_letters"] == 0
    assert report["check"]["consistent"] is True and report["accuracy"] > 0.6


def test_an_empty_target_cannot_tell_its_task() -> None:
    from meander.exceptions import ConfigError

    with pytest.raises(ConfigError, match="holds no value"):
        infer_task(pd.Series([None, None], name="y", dtype=object))


def test_a_champion_that_diverges_is_announced_and_replaced_and_no_event_is_lost(
    tmp_path: Path,
) -> None:
    # River's TrumpApproval, unscaled (a date as a day number near 736,000), under a linear
    # regression with too large a step: it answers -inf within a few dozen events, and NaN
    # after. Its rows are shuffled: in date order the day number only counts up, a clock that
    # inference leaves out.
    from river import datasets

    rows = [{**x, "approve": y} for x, y in datasets.TrumpApproval()]
    path = tmp_path / "approval.csv"
    pd.DataFrame(rows).sample(frac=1.0, random_state=7).to_csv(path, index=False)
    spec = "linear_model.LinearRegression(optimizer=optim.SGD(0.1), clip_gradient=1e300)"
    run = run_backtest(path, target="approve", model=spec, monitor=False)
    try:
        report, answers = build_report(run).data, champion_answers(run)
    finally:
        run.close()

    assert report["alerts"].get("performance") == 1  # announced once
    assert report["promotions"] and report["champion"]["version"] != 1  # and replaced
    served = [answer for answer in answers.values() for answer in answer]
    assert all(isinstance(a, float) and abs(a) < 1e6 for a in served)  # no null, no -inf
    assert report["check"]["consistent"] is True  # each event predicted once or dead-lettered
    reasons = report["dead_letter_reasons"]
    assert reasons and all(reason.endswith("it has diverged") for reason in reasons)
    assert len(answers) + report["check"]["events_dead_lettered"] == len(rows)


def test_gaps_in_a_column_cost_no_event(tmp_path: Path) -> None:
    # A number column with gaps is an optional feature; beside a categorical one, the default
    # models selected their features by name and raised KeyError on a row without it: 60 of
    # these 600 events dead-lettered, and their labels.
    path = write_stream(tmp_path, "sea", 600)
    frame = pd.read_csv(path)
    frame.loc[frame.index % 10 == 3, "x1"] = None
    frame.insert(0, "shop", ["north", "south", "east"] * 200)
    frame.to_csv(path, index=False)
    run, report, answers = quiet_backtest(path)
    assert run.stream.features["x1"].required is False
    assert run.stream.features["shop"].type == "categorical"
    assert report["dead_letters"] == 0 and len(answers) == 600


def test_a_column_empty_in_the_first_rows_costs_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A column with no value in the rows the stream is inferred from (one that appears later)
    # was typed by pandas as integers, so a categorical feature: once its numbers came, every
    # event was dead-lettered as "must be a string or an integer category" (the 150 events
    # below that have it), and its label held until given up.
    monkeypatch.setattr("meander.backtest.stream.INFER_ROWS", 100)
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path)
    frame.insert(0, "later", [None] * 150 + [i / 7 for i in range(150)])
    frame.to_csv(path, index=False)
    run, report, answers = quiet_backtest(path)
    assert "later" not in run.stream.features and report["ignored_columns"] == ["later"]
    assert report["dead_letters"] == 0 and len(answers) == 300


def test_codes_written_as_whole_floats_cost_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A column of a few whole numbers written as 0.0, 5.0, 10.0 is inferred as categorical
    # codes, but pandas hands its values out as floats, which a categorical feature refused:
    # all 300 events were dead-lettered ("must be a string or an integer category, got 5.0").
    monkeypatch.setattr("meander.backtest.stream.INFER_ROWS", 100)
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path)
    frame.insert(0, "discount", [float(5 * (i % 3)) for i in range(300)])
    frame.to_csv(path, index=False)
    run, report, answers = quiet_backtest(path)
    assert run.stream.features["discount"].type == "categorical"
    assert report["dead_letters"] == 0 and len(answers) == 300


def test_a_number_beyond_the_floats_is_dead_lettered_saying_so(tmp_path: Path) -> None:
    # pandas reads 1e400 as an infinity, which JSON writes as null: the event reached the
    # predictor without the value, dead-lettered as "feature 'x0' is required".
    path = write_stream(tmp_path, "sea", 300)
    frame = pd.read_csv(path, dtype={"x0": object})
    frame.loc[10, "x0"], frame.loc[20, "x0"] = "1e400", "-1e999"
    frame.to_csv(path, index=False)
    _, report, answers = quiet_backtest(path)
    assert len(answers) == 298 and report["check"]["events_dead_lettered"] == 2
    reasons = [reason for reason in report["dead_letter_reasons"] if "predictor" in reason]
    assert sorted(reasons) == [
        "predictor: feature 'x0' must be a number, got '-inf' (str)",
        "predictor: feature 'x0' must be a number, got 'inf' (str)",
    ]


def test_a_label_the_learner_refuses_is_left_out_of_the_reports_own_check(tmp_path: Path) -> None:
    # A regression label beyond +-1e100 is dead-lettered, and the served MAE leaves it out;
    # the report's check scored it anyway (MAE 3.6e307) and warned that the predictions topic
    # disagreed (found fuzzing meander backtest with hypothesis-made CSVs).
    path = write_stream(tmp_path, "friedman", 300)
    frame = pd.read_csv(path)
    frame.loc[150, "label"] = -1.7976931348623157e308
    frame.to_csv(path, index=False)
    _, report, _ = quiet_backtest(path)
    assert report["labels"] == 299
    assert report["check"]["consistent"] is True, report["check"]


def test_the_backtests_learner_holds_its_lease_through_any_pause(
    sea_run: tuple[BacktestRun, Report],
) -> None:
    # Its store is its own: with the 5 s default, a learner starved of CPU on a loaded machine
    # lost its lease mid-run, over and over ("held by nobody"), and redid its work since its
    # last checkpoint. The benchmarks' loop had an hour already.
    run, _ = sea_run
    assert run.stream.learning.lease_seconds == 3_600.0
