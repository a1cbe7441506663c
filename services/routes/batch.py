"""Batch scoring over HTTP: upload a CSV or Parquet file, get a prediction for every row back.

The stream's champion scores the file with :func:`meander.batch.score.score_file`, as ``meander
predict`` does, in a worker thread. The answer keeps every column of the file and adds
``prediction``, ``proba_<class>`` for a classifier, and ``error``; as CSV (the default), JSON or
NDJSON, per the ``format`` query or the ``Accept`` header.

By default a file is refused (422) when any row breaks the stream's schema, naming the rows and
the problems; ``errors=report`` scores the rest and leaves the reason in each bad row's ``error``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, File, Header, HTTPException, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from meander.batch.score import BatchError, BatchResult, score_file
from meander.config import StreamConfig
from meander.exceptions import ConfigError
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.replay import delimiter
from meander.producers.sample import plain
from meander.services.auth import require
from meander.services.context import Service, ServiceDep, StreamDep
from meander.services.problems import JSONRoute, Problems
from meander.services.routes.decisions import KEYS

__all__ = ["router"]

router = APIRouter(
    tags=["batch"], dependencies=[Depends(require("read"))], responses=KEYS, route_class=JSONRoute
)

Format = Literal["csv", "json", "ndjson"]
NDJSON = "application/x-ndjson"
UNREADABLE = (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError)
SHOWN_PROBLEMS = 20  # rows named in a 422; the count says how many more there are


class Scored(BaseModel):
    """The JSON answer (``format=json``); CSV and NDJSON carry the rows alone."""

    stream: str = Field(examples=["fraud"])
    version: int = Field(description="the champion that scored the file", examples=[3])
    rows: int = Field(examples=[2])
    scored: int = Field(description="rows with a prediction", examples=[2])
    classes: list[str] = Field(
        description="the proba_<class> columns", examples=[["False", "True"]]
    )
    predictions: list[dict[str, Any]] = Field(
        description="each row's columns, then prediction, proba_<class> and error",
        examples=[
            [
                {
                    "amount": 12.5,
                    "prediction": False,
                    "proba_False": 0.9,
                    "proba_True": 0.1,
                    "error": None,
                }
            ]
        ],
    )


@router.post(
    "/streams/{stream}/batch",
    summary="Score a CSV or Parquet file with the champion",
    response_model=None,
    responses={
        200: {
            "description": "a prediction for every row",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": Scored.model_json_schema()},
                NDJSON: {"schema": {"type": "string"}},
            },
        },
        400: {"description": "the body cannot be parsed"},
        404: {"description": "no such stream"},
        422: {
            "model": Problems,
            "description": "the file cannot be read, lacks a feature, or has bad rows",
        },
        503: {"description": "no champion yet, or Redis is unavailable"},
    },
)
def batch(
    service: ServiceDep,
    stream: StreamDep,
    file: Annotated[UploadFile, File(description="a .csv or .parquet file, a header row first")],
    output: Annotated[
        Format | None, Query(alias="format", description="default: from Accept, else csv")
    ] = None,
    errors: Annotated[
        Literal["reject", "report"],
        Query(description="reject: 422 when a row breaks the schema; report: say so in its row"),
    ] = "reject",
    accept: Annotated[str, Header(include_in_schema=False)] = "",
) -> Response:
    """Score every row of the file with the stream's current champion (in a worker thread)."""
    chosen = output or _negotiated(accept)
    version, model = _champion(service, stream)
    folder = Path(tempfile.mkdtemp(prefix="meander-batch-"))
    streamed = False  # a CSV answer is sent from the folder, which goes once it is sent
    try:
        name = file.filename or "the file"
        upload = _saved(file, folder)
        _check_columns(upload, stream, name)
        out = folder / ("scored.csv" if chosen == "csv" else "scored.parquet")
        try:
            result = score_file(upload, out, model=model, task=stream.task, stream=stream)
        except BatchError as error:
            raise _bad_file(str(error).replace(str(upload), name)) from None
        if errors == "reject" and result.rejected:
            raise _bad_rows(result)
        headers = {
            "X-Meander-Model-Version": str(version),
            "X-Meander-Rows": str(result.rows),
            "X-Meander-Scored": str(result.scored),
        }
        if chosen != "csv":
            return _json(result, stream, version, chosen, headers)
        cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
        streamed = True
        return FileResponse(out, media_type="text/csv", headers=headers, background=cleanup)
    finally:
        if not streamed:
            shutil.rmtree(folder, ignore_errors=True)


def _negotiated(accept: str) -> Format:
    for media in (part.split(";", 1)[0].strip().lower() for part in accept.split(",")):
        if media == "application/json":
            return "json"
        if media in (NDJSON, "application/ndjson", "application/jsonl"):
            return "ndjson"
        if media in ("text/csv", "text/*", "*/*"):
            return "csv"
    return "csv"


def _champion(service: Service, stream: StreamConfig) -> tuple[int, Any]:
    retry = {"Retry-After": str(service.settings.service.retry_after_seconds)}
    try:
        registry = Registry(service.runtime.store, stream.name, signer_for(service.settings))
    except ConfigError as error:  # Redis without a signing key: no model can be verified
        raise HTTPException(503, str(error), headers=retry) from None
    version = registry.champion()
    if version is None:
        raise HTTPException(
            503,
            f"stream {stream.name!r} has no champion yet: its learner registers the first model "
            f"when it starts; retry once it runs",
            headers=retry,
        )
    model, _ = registry.load(version)
    return version, model


def _saved(file: UploadFile, folder: Path) -> Path:
    head = file.file.read(4)
    file.file.seek(0)
    # Parquet files begin with its magic bytes, whatever the upload is called.
    path = folder / ("upload.parquet" if head == b"PAR1" else "upload.csv")
    with path.open("wb") as copy:
        shutil.copyfileobj(file.file, copy)
    return path


def _check_columns(path: Path, stream: StreamConfig, name: str) -> None:
    try:
        if path.suffix == ".parquet":
            columns = set(pq.read_schema(path).names)
        else:
            header = pd.read_csv(path, sep=delimiter(path), nrows=0)
            columns = {str(c) for c in header.columns}
    except UNREADABLE as error:
        kind = path.suffix[1:].upper()
        raise _bad_file(f"cannot read {name} as {kind}: {error}") from None
    missing = [n for n, feature in stream.features.items() if feature.required and n not in columns]
    if missing:
        raise _bad_file(
            f"{name} has no column {', '.join(map(repr, missing))}, required by stream "
            f"{stream.name!r} (its features: {', '.join(stream.features)}); columns found: "
            f"{', '.join(sorted(columns)) or 'none'}"
        )


def _bad_file(message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ["body", "file"], "msg": message, "type": "value_error"}]
    )


def _bad_rows(result: BatchResult) -> RequestValidationError:
    if result.path.suffix == ".parquet":
        reasons = pd.read_parquet(result.path, columns=["error"])["error"]
    else:
        reasons = pd.read_csv(result.path, usecols=["error"], dtype=object)["error"]
    bad = [(i + 1, str(reason)) for i, reason in enumerate(reasons.tolist()) if pd.notna(reason)]
    problems = [
        {"loc": ["body", "file", "row", row], "msg": f"row {row}: {reason}", "type": "value_error"}
        for row, reason in bad[:SHOWN_PROBLEMS]
    ]
    if len(bad) > SHOWN_PROBLEMS:
        more = f"and {len(bad) - SHOWN_PROBLEMS} more rows; send errors=report to see them all"
        problems.append({"loc": ["body", "file"], "msg": more, "type": "value_error"})
    return RequestValidationError(problems)


def _json(
    result: BatchResult, stream: StreamConfig, version: int, chosen: Format, headers: dict[str, str]
) -> Response:
    frame = pd.read_parquet(result.path)
    rows = [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    if chosen == "ndjson":
        body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        return Response(body, media_type=NDJSON, headers=headers)
    answer = Scored(
        stream=stream.name,
        version=version,
        rows=result.rows,
        scored=result.scored,
        classes=result.classes,
        predictions=rows,
    )
    return Response(answer.model_dump_json(), media_type="application/json", headers=headers)
