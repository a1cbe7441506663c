"""Batch serving: a CSV or Parquet file scored in chunks and written back with its predictions.

The model is a stream's registry champion (or any version) or an exported model file
(:mod:`meander.models.export`); it scores through :func:`meander.models.inference.predict_many`, as
the predictor does. The output keeps every column of the input and adds ``prediction``, for a
classifier one ``proba_<label>`` column per class, and ``error``: empty for a scored row, the reason
for a row that breaks the stream's schema (or that the model could not score), whose prediction is
then empty. Nothing stops at a bad row.

The probability columns are the classes found in the first chunk with any probability (River
leaves out classes of probability 0, which show as 0.0). A class first met later cannot be
added to a file already being written: :attr:`BatchResult.left_out` names it.

CSV is typeless and pandas types each chunk on its own, so a column with one bad value comes
back as text: for a numeric or boolean feature of the schema, text that reads as a number or as
true/false is taken as one. Without a stream config every column is a feature, and a text
column of numbers bar a few values a numeric one (:mod:`meander.producers.text`).

>>> import pathlib, tempfile
>>> from river import linear_model
>>> from meander.config import StreamConfig
>>> model = linear_model.LinearRegression()
>>> for x in range(20):
...     model.learn_one({"x": x / 10}, x / 5)
>>> stream = StreamConfig(name="toy", task="regression", features={"x": {"maximum": 10}})
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "toy.csv").write_text("x,note\\n0.5,a\\n11,b\\noops,c\\n")
>>> result = score_file(folder / "toy.csv", model=model, task="regression", stream=stream)
>>> result.path.name, result.rows, result.scored
('toy.predictions.csv', 3, 1)
>>> pd.read_csv(result.path)["error"].tolist()[1:]
["feature 'x' = 11.0 is above its maximum 10", "feature 'x' must be a number, got 'oops' (str)"]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from river import base

from meander.batch.output import BatchError, Output
from meander.config import StreamConfig
from meander.models.inference import Scored, clean, predict_many, predict_one
from meander.producers.replay import delimiter
from meander.producers.sample import plain
from meander.producers.text import from_text, numeric_text_columns
from meander.schema import Schema

__all__ = [
    "FORMATS",
    "BatchError",
    "BatchResult",
    "default_output",
    "model_task",
    "score_file",
]

FORMATS = (".csv", ".parquet")
ADDED = ("prediction", "error")
_UNREADABLE = (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowException, ValueError)


@dataclass
class BatchResult:
    """Where the scored file went and how many of its rows were scored or rejected."""

    path: Path
    rows: int = 0
    scored: int = 0
    classes: list[str] = field(default_factory=list)
    left_out: set[str] = field(default_factory=set)

    @property
    def rejected(self) -> int:
        return self.rows - self.scored


def default_output(path: str | Path) -> Path:
    """``data/x.parquet`` is written to ``data/x.predictions.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.predictions.csv")


def model_task(model: Any) -> str:
    """``regression`` for a River regressor, ``multiclass`` (any classification) otherwise."""
    return "regression" if isinstance(model, base.Regressor) else "multiclass"


def score_file(
    path: str | Path,
    out: str | Path | None = None,
    *,
    model: Any,
    task: str,
    stream: StreamConfig | None = None,
    batch: int = 1_000,
) -> BatchResult:
    """Score every row of ``path`` with ``model`` and write ``out`` (see the module docstring).

    The output appears whole or not at all: it is written beside and renamed when complete.
    """
    path = Path(path)
    out = Path(out) if out is not None else default_output(path)
    _check_files(path, out, batch)
    schema = Schema(stream) if stream is not None else None
    result = BatchResult(out)
    pending: list[tuple[pd.DataFrame, list[Scored]]] = []
    classes: list[str] | None = [] if task == "regression" else None
    with Output(out) as output:
        for frame, records in _chunks(path, batch):
            scored = _score(frame, records, model, task, schema, result)
            pending.append((frame, scored))
            if classes is None:
                found = {label for _, proba in scored if proba for label in proba}
                if not found:
                    continue  # no class known yet: the header must wait for one
                classes = sorted(found)
            for waiting, answers in pending:
                output.write(_with_probabilities(waiting, answers, classes, result))
            pending = []
        for waiting, answers in pending:
            output.write(_with_probabilities(waiting, answers, [], result))
        if result.rows == 0:
            output.write(_empty(path))
    result.classes = classes or []
    return result


def _check_files(path: Path, out: Path, batch: int) -> None:
    for role, file in (("input", path), ("output", out)):
        if file.suffix.lower() not in FORMATS:
            raise BatchError(
                f"{role} file {file}: {file.suffix or 'no extension'} is not a supported kind "
                f"of file; use one of {', '.join(FORMATS)}"
            )
    if not path.is_file():
        raise BatchError(f"cannot score {path}: no such file")
    if out.resolve() == path.resolve():
        raise BatchError(f"the output {out} would overwrite the input; name another --out")
    if batch < 1:
        raise BatchError(f"the batch size must be at least 1 row, got {batch}")


def _chunks(path: Path, rows: int) -> Iterator[tuple[pd.DataFrame, list[dict[str, Any]]]]:
    """Each chunk as a frame (what is written back) and as rows of plain values (what is scored)."""
    with _reading(path):
        if path.suffix.lower() == ".parquet":
            with pq.ParquetFile(path) as parquet:
                for batch in parquet.iter_batches(batch_size=rows):
                    records = [{str(k): plain(v) for k, v in r.items()} for r in batch.to_pylist()]
                    yield _checked(batch.to_pandas(types_mapper=pd.ArrowDtype), path), records
            return
        sep = delimiter(path)
        with pd.read_csv(path, sep=sep, chunksize=rows, dtype_backend="numpy_nullable") as frames:
            for frame in frames:
                records = [
                    {str(k): plain(v) for k, v in r.items()} for r in frame.to_dict("records")
                ]
                yield _checked(frame, path), records


def _checked(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    clashes = [str(c) for c in frame.columns if str(c) in ADDED or str(c).startswith("proba_")]
    if clashes:
        raise BatchError(
            f"{path} already has the column(s) {', '.join(clashes)}, which the output adds; "
            f"rename or drop them first"
        )
    return frame


def _score(
    frame: pd.DataFrame,
    records: list[dict[str, Any]],
    model: Any,
    task: str,
    schema: Schema | None,
    result: BatchResult,
) -> list[Scored]:
    """Score the valid rows; the chunk gains ``prediction`` and ``error``, the probabilities
    are returned for :func:`_with_probabilities`."""
    if schema is not None:
        kinds = {name: feature.type for name, feature in schema.features.items()}
    else:  # every column is a feature; the numbers a CSV chunk left as text are numbers
        kinds = dict.fromkeys(map(str, frame.columns), "categorical")
        kinds.update(dict.fromkeys(numeric_text_columns(frame), "numeric"))
    features = [_features(record, kinds) for record in records]
    errors = [schema.violation(x) if schema is not None else None for x in features]
    valid = [i for i, error in enumerate(errors) if error is None]
    answers: list[Scored] = [(None, None)] * len(records)
    outcomes = _predict(model, [features[i] for i in valid], task)
    for i, (answer, error) in zip(valid, outcomes, strict=True):
        answers[i], errors[i] = answer, error
    result.rows += len(records)
    result.scored += sum(error is None for error in errors)
    frame["prediction"] = pd.Series([a[0] for a in answers], index=frame.index, dtype=object)
    frame["error"] = pd.Series(errors, index=frame.index, dtype=object)
    return answers


def _features(record: dict[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    return {name: from_text(record.get(name), kind) for name, kind in kinds.items()}


def _predict(
    model: Any, xs: Sequence[dict[str, Any]], task: str
) -> list[tuple[Scored, str | None]]:
    """Each row's answer and, when the model failed on it, why."""
    cleaned = [clean(x) for x in xs]
    try:
        return [(answer, None) for answer in predict_many(model, cleaned, task)]
    except Exception:  # find the rows the model fails on, one by one
        return [_predict_row(model, x, task) for x in cleaned]


def _predict_row(model: Any, x: dict[str, Any], task: str) -> tuple[Scored, str | None]:
    try:
        return predict_one(model, x, task), None
    except Exception as error:  # a row the model cannot take is reported
        return (None, None), f"the model could not score this row: {type(error).__name__}: {error}"


def _with_probabilities(
    frame: pd.DataFrame, answers: list[Scored], classes: list[str], result: BatchResult
) -> pd.DataFrame:
    columns: dict[str, list[float | None]] = {f"proba_{label}": [] for label in classes}
    for _, proba in answers:
        if proba:
            result.left_out.update(set(proba) - set(classes))
        for label in classes:
            missing = None if proba is None else 0.0
            columns[f"proba_{label}"].append(proba.get(label, 0.0) if proba else missing)
    error = frame.pop("error")
    for name, values in columns.items():
        frame[name] = pd.Series(values, index=frame.index, dtype="Float64")
    frame["error"] = error
    return frame


def _empty(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".parquet":
        frame: pd.DataFrame = pq.read_schema(path).empty_table().to_pandas()
    else:
        frame = pd.read_csv(path, sep=delimiter(path), nrows=0)
    return frame.assign(prediction=pd.Series(dtype=object), error=pd.Series(dtype=object))


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    try:
        yield
    except _UNREADABLE as error:
        raise BatchError(f"cannot read {path}: {error}") from None
