"""Which stream a backtest runs: the configured one, or one inferred from the file.

Inference reads the first rows: the task from the target column (:func:`infer_task`), the
features from the other columns (:func:`meander.schema.infer_features`, which leaves out
identifiers, free text, dates, row ids and clocks that only count up, and columns with no value
in those rows).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "loans.csv"
>>> _ = path.write_text("amount,country,default\\n120.5,FR,no\\n80,DE,yes\\n")
>>> stream = infer_stream(FileSource(path, target="default"), "loans")
>>> stream.task, {name: f.type for name, f in stream.features.items()}
('multiclass', {'amount': 'numeric', 'country': 'categorical'})
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from meander.config import Settings, StreamConfig, Task
from meander.exceptions import ConfigError
from meander.models.specs import build_model, check_task
from meander.producers.replay import FileSource
from meander.producers.text import numeric_text_columns
from meander.schema import infer_features

__all__ = ["INFER_ROWS", "infer_stream", "infer_task", "resolve_stream"]

INFER_ROWS = 1_000  # rows a stream's task and features are inferred from
MULTICLASS_MAX = 20  # an integer target with more distinct values is a quantity


def resolve_stream(
    source: FileSource, settings: Settings, *, name: str | None = None, model: str | None = None
) -> StreamConfig:
    """The stream to backtest: configured (``name``, else the first) or inferred from the file,
    with ``model`` as its champion spec when given. The spec is built once to check it."""
    if settings.streams:
        stream = settings.stream(name) if name else settings.streams[0]
        _check_columns(stream, source)
    else:
        stream = infer_stream(source, name or _stream_name(source.path))
    if model:
        stream = stream.model_copy(update={"model": model})
    check_task(build_model(stream.model), stream.task)
    return stream


def infer_stream(source: FileSource, name: str) -> StreamConfig:
    """A stream named ``name`` whose task and features are guessed from the file's first rows."""
    if source.target is None:
        raise ConfigError(f"a stream can only be inferred from {source.path} with a target column")
    head = source.frame_head(INFER_ROWS)
    task = infer_task(head[source.target])
    columns = head[source.columns()]
    features = infer_features(_numbers_read_back(columns))
    for column, feature in features.items():
        # A number left as text is refused row by row, not a sign of an optional feature.
        required = bool(columns[column].notna().all())
        features[column] = feature.model_copy(update={"required": required})
    if not features:
        raise ConfigError(
            f"{source.path} has no column usable as a feature (numbers, booleans, or text with "
            f"few distinct values) besides its target {source.target!r}; describe the stream in "
            f"a config file"
        )
    return StreamConfig(name=name, task=task, features=features)


def infer_task(target: pd.Series[Any]) -> Task:
    """``binary`` for booleans (or 0 and 1), ``multiclass`` for text or a few distinct
    integers, ``regression`` otherwise.

    A binary stream's labels are False and True, which its models (a logistic regression)
    learn as numbers: two other labels, "no" and "yes" or 3 and 7, make a multiclass stream,
    which takes any label.

    >>> infer_task(pd.Series([0.5, 1.5, 2.25])), infer_task(pd.Series(["a", "b", "c"]))
    ('regression', 'multiclass')
    >>> infer_task(pd.Series([0, 1, 1])), infer_task(pd.Series([1.0, None, 0.0]))
    ('binary', 'binary')
    >>> infer_task(pd.Series([3, 7, 3])), infer_task(pd.Series(["no", "yes"]))
    ('multiclass', 'multiclass')
    """
    present = target.dropna()
    if present.empty:
        raise ConfigError(
            f"target column {target.name!r} holds no value in the first {len(target)} rows, so "
            f"its task cannot be inferred; describe the stream in a config file"
        )
    if pd.api.types.is_bool_dtype(present.dtype) or _booleans(present):
        return "binary"
    if pd.api.types.is_float_dtype(present.dtype):
        return "regression"
    if pd.api.types.is_numeric_dtype(present.dtype) and present.nunique() > MULTICLASS_MAX:
        return "regression"
    return "multiclass"


def _booleans(values: pd.Series[Any]) -> bool:
    """Whether ``values`` are all booleans or 0 and 1 (as numbers; text is not)."""
    if not pd.api.types.is_numeric_dtype(values.dtype) and not all(
        type(value) is bool for value in values
    ):
        return False
    return bool(values.isin([0, 1]).all())


def _numbers_read_back(frame: pd.DataFrame) -> pd.DataFrame:
    # pandas reads a whole CSV column as text when one value is not a number, which would make
    # a numeric feature look like an identifier.
    frame = frame.copy()
    for name in numeric_text_columns(frame):
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame


def _check_columns(stream: StreamConfig, source: FileSource) -> None:
    columns = set(source.columns())
    missing = [n for n, f in stream.features.items() if f.required and n not in columns]
    if missing:
        raise ConfigError(
            f"{source.path} lacks the required feature column(s) {', '.join(missing)} of "
            f"stream {stream.name!r}; its columns are: {', '.join(sorted(columns))}"
        )


def _stream_name(path: Path) -> str:
    # The file's stem, in the topic alphabet a stream name must use.
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:100] or "backtest"
