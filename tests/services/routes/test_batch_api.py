"""Batch scoring over HTTP: CSV or Parquet in, every row's prediction out as CSV, JSON or NDJSON."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from meander import topics
from meander.bus import MemoryBroker, MemoryBus
from meander.config import Settings, StreamConfig
from meander.models.inference import predict_one
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_model
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.routes import batch as batch_module
from meander.store import memory_store

SPEC = "preprocessing.StandardScaler | linear_model.LogisticRegression"
URL = "/v1/streams/sea/batch"


def sea() -> StreamConfig:
    config = synthetic("sea").stream_config("sea", model=SPEC)
    features = config.features | {"x0": config.features["x0"].model_copy(update={"maximum": 10})}
    return config.model_copy(update={"features": features})


@dataclass
class World:
    runtime: Runtime
    registry: Registry
    client: TestClient
    model: Any = None

    def champion(self) -> None:
        model: Any = build_model(SPEC)
        for sample in synthetic("sea", seed=3).samples(300):
            model.learn_one(sample.features, sample.label)
        self.registry.promote(self.registry.register(model, spec=SPEC).version)
        self.model = model


@pytest.fixture
def world() -> Iterator[World]:
    settings = Settings(streams=[sea()], service={"anonymous_scopes": ["read"]})
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout(settings.streams))
    runtime = Runtime(settings, bus, memory_store(fakeredis.FakeServer()))
    registry = Registry(runtime.store, "sea", signer_for(settings))
    with TestClient(create_app(settings, runtime=runtime)) as client:
        yield World(runtime, registry, client)
    runtime.close()


ROWS = [
    {"x0": 1.5, "x1": 7.0, "x2": 3.0, "note": "a"},
    {"x0": 8.0, "x1": 2.0, "x2": 9.5, "note": "b"},
    {"x0": 4.0, "x1": 4.0, "x2": 0.5, "note": "c"},
]


def csv(text: str, name: str = "rows.csv") -> dict[str, Any]:
    return {"file": (name, text.encode(), "text/csv")}


def frame_csv(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return csv(pd.DataFrame(rows).to_csv(index=False))


def parquet(rows: list[dict[str, Any]], name: str = "rows.parquet") -> dict[str, Any]:
    buffer = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buffer, index=False)
    return {"file": (name, buffer.getvalue(), "application/octet-stream")}


def expected(world: World, row: dict[str, Any]) -> Any:
    features = {k: v for k, v in row.items() if k.startswith("x")}
    return predict_one(world.model, features, "binary")


def test_a_csv_comes_back_with_a_prediction_for_every_row(world: World) -> None:
    world.champion()
    response = world.client.post(URL, files=frame_csv(ROWS))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-meander-model-version"] == "1"
    assert (response.headers["x-meander-rows"], response.headers["x-meander-scored"]) == ("3", "3")
    scored = pd.read_csv(io.StringIO(response.text))
    assert list(scored.columns) == [
        "x0", "x1", "x2", "note", "prediction", "proba_False", "proba_True", "error"
    ]  # fmt: skip
    assert scored["note"].tolist() == ["a", "b", "c"]
    for row, (_, answer) in zip(ROWS, scored.iterrows(), strict=True):
        prediction, proba = expected(world, row)
        assert answer["prediction"] == prediction
        assert answer["proba_True"] == pytest.approx(proba["True"])
    assert scored["error"].isna().all()


def test_a_csv_separated_by_semicolons_is_scored_as_with_commas(world: World) -> None:
    world.champion()
    commas = world.client.post(URL, files=frame_csv(ROWS))
    semicolons = world.client.post(URL, files=csv(pd.DataFrame(ROWS).to_csv(index=False, sep=";")))

    assert semicolons.status_code == 200, semicolons.text
    assert semicolons.text == commas.text


def test_parquet_in_json_out_per_the_format_query(world: World) -> None:
    world.champion()
    response = world.client.post(URL, files=parquet(ROWS), params={"format": "json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["stream"], answer["version"], answer["rows"], answer["scored"]) == (
        "sea", 1, 3, 3
    )  # fmt: skip
    assert answer["classes"] == ["False", "True"]
    first = answer["predictions"][0]
    assert (first["x0"], first["note"], first["error"]) == (1.5, "a", None)
    prediction, proba = expected(world, ROWS[0])
    assert first["prediction"] == prediction
    assert first["proba_True"] == pytest.approx(proba["True"])


def test_ndjson_per_the_accept_header(world: World) -> None:
    world.champion()
    response = world.client.post(
        URL, files=frame_csv(ROWS), headers={"Accept": "application/x-ndjson"}
    )
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [line["note"] for line in lines] == ["a", "b", "c"]
    assert all("prediction" in line for line in lines)


def test_rows_that_break_the_schema_are_422_naming_row_and_problem(world: World) -> None:
    world.champion()
    rows = [*ROWS, {"x0": 11.0, "x1": 1.0, "x2": 1.0, "note": "d"}]
    text = pd.DataFrame(rows).to_csv(index=False).replace("4.0,4.0,0.5", "4.0,oops,0.5")
    response = world.client.post(URL, files=csv(text))
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "file", "row", 3],
            "msg": "row 3: feature 'x1' must be a number, got 'oops' (str)",
            "type": "value_error",
        },
        {
            "loc": ["body", "file", "row", 4],
            "msg": "row 4: feature 'x0' = 11.0 is above its maximum 10",
            "type": "value_error",
        },
    ]
    report = world.client.post(URL, files=csv(text), params={"errors": "report"})
    assert report.status_code == 200
    scored = pd.read_csv(io.StringIO(report.text))
    assert scored["error"].notna().tolist() == [False, False, True, True]
    assert report.headers["x-meander-scored"] == "2"


def test_many_bad_rows_name_the_first_twenty(world: World) -> None:
    world.champion()
    rows = [{"x0": 50.0, "x1": 1.0, "x2": 1.0}] * 25
    problems = world.client.post(URL, files=frame_csv(rows)).json()["detail"]
    assert len(problems) == 21
    assert problems[-1]["msg"] == "and 5 more rows; send errors=report to see them all"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (csv("x0,x2\n1,2\n"), "rows.csv has no column 'x1', required by stream 'sea'"),
        (csv(""), "cannot read rows.csv as CSV: No columns to parse from file"),
        (csv("PAR1 not really", "fake.parquet"), "cannot read fake.parquet as PARQUET: "),
        (csv('x0,x1,x2\n1,2,"3\n'), "cannot read rows.csv as CSV: Error tokenizing data"),
        (
            csv("x0,x1,x2,prediction\n1,2,3,4\n"),
            "rows.csv already has the column(s) prediction, which the output adds",
        ),
    ],
)
def test_a_bad_file_is_422_saying_what_is_wrong(
    world: World, files: dict[str, Any], message: str
) -> None:
    world.champion()
    response = world.client.post(URL, files=files)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "file"]
    assert problem["msg"].startswith(message)


def test_no_champion_yet_is_503_with_retry_after(world: World) -> None:
    response = world.client.post(URL, files=frame_csv(ROWS))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"].startswith("stream 'sea' has no champion yet")


def test_requests_without_a_file_or_for_unknown_streams_are_4xx(world: World) -> None:
    world.champion()
    assert world.client.post(URL).status_code == 422
    assert world.client.post("/v1/streams/cars/batch", files=frame_csv(ROWS)).status_code == 404
    wrong = world.client.post(URL, files=frame_csv(ROWS), params={"format": "xml"})
    assert wrong.status_code == 422


def test_scoring_runs_in_a_worker_thread_and_leaves_no_files(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    world.champion()
    threads: list[str] = []
    score_file = batch_module.score_file

    def recorded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return score_file(*args, **kwargs)

    monkeypatch.setattr(batch_module, "score_file", recorded)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    for output in ("csv", "json"):
        assert world.client.post(URL, files=frame_csv(ROWS), params={"format": output}).is_success
    assert world.client.post(URL, files=csv("x0\n1\n")).status_code == 422
    assert len(threads) == 2 and all(name.startswith("AnyIO worker") for name in threads)
    assert list(tmp_path.iterdir()) == []
