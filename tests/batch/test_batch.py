"""meander export and meander predict: a registry champion out as a file, files scored in batch."""

from __future__ import annotations

import json
import pickle
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from meander.batch.score import score_file
from meander.cli.app import app
from meander.config import Settings
from meander.models.inference import clean, predict_one
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_model
from meander.producers import synthetic
from meander.store import memory_store

runner = CliRunner()
SPEC = "preprocessing.StandardScaler | linear_model.LogisticRegression"


@pytest.fixture(autouse=True)
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MEANDER_CONFIG",
        "MEANDER_KAFKA_BOOTSTRAP",
        "MEANDER_REDIS_URL",
        "MEANDER_MODEL_SIGNING_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stream() -> str:
    """A stream of the process's embedded registry with a trained champion (v2 of two)."""
    name = f"sea{uuid.uuid4().hex[:8]}"
    registry = Registry(memory_store(), name, signer_for(Settings()))
    registry.register(build_model(SPEC), spec=SPEC)
    model: Any = build_model(SPEC)
    for sample in synthetic("sea", seed=3).samples(500):
        model.learn_one(sample.features, sample.label)
    champion = registry.register(model, spec=SPEC, parent=1)
    registry.promote(champion.version, reason="trained for the test")
    return name


@pytest.fixture
def config(stream: str, tmp_path: Path) -> Path:
    path = tmp_path / "meander.toml"
    path.write_text(
        f"[[streams]]\nname = '{stream}'\ntask = 'binary'\nmodel = '{SPEC}'\n"
        "[streams.features]\nx0 = {type = 'numeric', maximum = 10}\nx1 = 'numeric'\n"
        "x2 = 'numeric'\n"
    )
    return path


def rows(count: int = 40) -> pd.DataFrame:
    samples = list(synthetic("sea", seed=11).samples(count))
    frame = pd.DataFrame([sample.features for sample in samples])
    frame.insert(0, "ticket", [f"t-{i}" for i in range(count)])
    return frame


def champion_model(stream: str) -> Any:
    registry = Registry(memory_store(), stream, signer_for(Settings()))
    version = registry.champion()
    assert version is not None
    return registry.load(version)[0]


def test_export_writes_a_plain_pickle_of_the_champion(
    stream: str, config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models" / "champion.pkl"
    result = runner.invoke(app, ["export", "-c", str(config), str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "version 2" in result.output and SPEC in result.output
    with out.open("rb") as file:
        model = pickle.load(file)
    x = {str(k): v for k, v in rows(1).drop(columns="ticket").iloc[0].items()}
    assert predict_one(model, x, "binary") == predict_one(champion_model(stream), x, "binary")
    sidecar = json.loads((tmp_path / "models" / "champion.pkl.json").read_text())
    assert (sidecar["stream"], sidecar["version"], sidecar["spec"]) == (stream, 2, SPEC)


def test_export_takes_a_version_and_names_an_unknown_one(
    stream: str, config: Path, tmp_path: Path
) -> None:
    first = runner.invoke(app, ["export", "-c", str(config), "--version", "1", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert "version 1" in first.output
    missing = runner.invoke(
        app, ["export", "-c", str(config), "--version", "9", str(tmp_path / "b")]
    )
    assert missing.exit_code == 1
    assert "no model version 9" in missing.output and "known versions: 1, 2" in missing.output


def test_export_of_a_stream_without_a_champion_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--stream", "empty-stream", str(tmp_path / "m.pkl")])
    assert result.exit_code == 1
    assert "has no champion to export" in result.output


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_scores_a_file_and_reports_bad_rows(
    stream: str, config: Path, tmp_path: Path, suffix: str
) -> None:
    frame = rows()
    if suffix == ".csv":
        frame["x0"] = frame["x0"].astype(object)
        frame.loc[3, "x0"] = "oops"  # CSV has no types: one bad value turns the column to text
    frame.loc[5, "x1"] = None  # a required feature missing
    frame.loc[7, "x0"] = 11.5  # above the schema's maximum
    source, out = tmp_path / f"events{suffix}", tmp_path / f"scored{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False)
    result = runner.invoke(
        app, ["predict", str(source), "-c", str(config), "--out", str(out), "--batch", "16"]
    )
    assert result.exit_code == 0, result.output
    bad = {5: "'x1' is required", 7: "above its maximum 10"}
    if suffix == ".csv":
        bad[3] = "'x0' must be a number, got 'oops'"
    assert f"{len(frame)} rows, {len(frame) - len(bad)} scored" in result.output
    scored = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(scored.columns) == [
        *frame.columns,
        "prediction",
        "proba_False",
        "proba_True",
        "error",
    ]
    assert scored["ticket"].tolist() == frame["ticket"].tolist()
    model = champion_model(stream)
    for i, row in scored.iterrows():
        assert isinstance(i, int)
        if i in bad:
            assert bad[i] in row["error"]
            assert pd.isna(row["prediction"]) and pd.isna(row["proba_True"])
            continue
        assert pd.isna(row["error"])
        features = {name: float(frame[name][i]) for name in ("x0", "x1", "x2")}
        expected, proba = predict_one(model, clean(features), "binary")
        assert proba is not None
        assert bool(row["prediction"]) == expected
        assert row["proba_True"] == pytest.approx(proba["True"])


def test_predict_with_an_exported_model_file(stream: str, config: Path, tmp_path: Path) -> None:
    exported = tmp_path / "champion.pkl"
    assert runner.invoke(app, ["export", "-c", str(config), str(exported)]).exit_code == 0
    source = tmp_path / "events.csv"
    rows().to_csv(source, index=False)
    from_file = runner.invoke(
        app, ["predict", str(source), "-c", str(config), "--model-file", str(exported)]
    )
    assert from_file.exit_code == 0, from_file.output
    assert "with model file" in from_file.output
    default_out = tmp_path / "events.predictions.csv"
    by_file = pd.read_csv(default_out)
    from_registry = runner.invoke(app, ["predict", str(source), "-c", str(config)])
    assert from_registry.exit_code == 0, from_registry.output
    assert f"v2 of stream {stream!r}" in from_registry.output
    pd.testing.assert_frame_equal(by_file, pd.read_csv(default_out))


def test_without_a_stream_config_every_column_is_a_feature(stream: str, tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    rows().drop(columns="ticket").to_csv(source, index=False)
    result = score_file(source, model=champion_model(stream), task="binary")
    scored = pd.read_csv(result.path)
    assert result.scored == result.rows == 40 and scored["error"].isna().all()


def test_a_file_separated_by_semicolons_is_scored_as_with_commas(
    stream: str, tmp_path: Path
) -> None:
    commas, semicolons = tmp_path / "commas.csv", tmp_path / "semicolons.csv"
    rows().drop(columns="ticket").to_csv(commas, index=False)
    rows().drop(columns="ticket").to_csv(semicolons, index=False, sep=";")
    model = champion_model(stream)

    by_commas = score_file(commas, model=model, task="binary")
    by_semicolons = score_file(semicolons, model=model, task="binary")

    assert by_semicolons.scored == by_semicolons.rows == 40
    pd.testing.assert_frame_equal(pd.read_csv(by_semicolons.path), pd.read_csv(by_commas.path))


def test_a_model_failing_on_a_row_is_reported_for_that_row(stream: str, tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    frame = rows(20).drop(columns="ticket")
    frame["x0"] = frame["x0"].astype(object)
    frame.loc[4, "x0"] = "oops"  # no schema to refuse it: the scaler cannot take text
    frame.to_csv(source, index=False)
    result = score_file(source, model=champion_model(stream), task="binary")
    errors = pd.read_csv(result.path)["error"]
    assert result.rejected == 1 and "could not score this row: TypeError" in errors[4]


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        (["{source}", "--out", "{folder}/out.json"], 2, ".json is not a supported kind"),
        (["{source}", "--out", "{source}"], 2, "would overwrite the input"),
        (["{folder}/missing.csv"], 2, "does not exist"),
        (["{source}", "--stream", "nope"], 2, "unknown stream 'nope'"),
    ],
)
def test_predict_refuses_bad_input(
    config: Path, tmp_path: Path, arguments: list[str], code: int, says: str
) -> None:
    source = tmp_path / "events.csv"
    rows(5).to_csv(source, index=False)
    arguments = [a.format(source=source, folder=tmp_path) for a in arguments]
    result = runner.invoke(app, ["predict", *arguments, "-c", str(config)])
    assert result.exit_code == code, result.output
    assert says in result.output


def test_predict_refuses_a_file_that_already_has_a_prediction_column(
    config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "scored.csv"
    rows(5).assign(prediction=1).to_csv(source, index=False)
    result = runner.invoke(app, ["predict", str(source), "-c", str(config)])
    assert result.exit_code == 2
    assert "already has the column(s) prediction" in result.output
    assert not (tmp_path / "scored.predictions.csv").exists()
