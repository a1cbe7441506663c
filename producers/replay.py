"""Replay of a CSV or Parquet file as samples, a chunk of rows at a time.

The file is never read whole: pandas reads a CSV ``chunk_rows`` rows at a time and pyarrow a Parquet
file one record batch at a time. The ``target`` column becomes each sample's label (the feedback a
:class:`~meander.producers.labels.Publisher` publishes, late if asked), an optional id column the
event id (else ``{file stem}-{row:08d}``), an optional time column the event time; every other
column is a feature. Missing values (NaN, null, NA) become None, numpy scalars plain Python values.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "loans.csv"
>>> _ = path.write_text("amount,country,default\\n120.5,FR,0\\n,DE,1\\n")
>>> source = FileSource(path, target="default")
>>> for sample in source.samples(progress=False):
...     print(sample.event_id, sample.features, sample.label)
loans-00000000 {'amount': 120.5, 'country': 'FR'} 0
loans-00000001 {'amount': None, 'country': 'DE'} 1
>>> source.features()
{'amount': 'numeric', 'country': 'categorical'}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from meander.producers.exceptions import ReplayError
from meander.producers.pacing import TokenBucket, progress_bar
from meander.producers.sample import Sample, plain

__all__ = ["REPLAYABLE", "FileSource", "delimiter"]

REPLAYABLE = (".csv", ".parquet")
DELIMITERS = ",;\t|"  # a comma first: it wins a tie
# What a reader raises on a file it cannot parse; reported as a ReplayError naming the file.
_UNREADABLE = (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowException, ValueError)


class FileSource:
    """The rows of a CSV or Parquet file as :class:`~meander.producers.sample.Sample` objects.

    ReplayError, naming the file and the column, when the file does not exist, is neither CSV
    nor Parquet, cannot be parsed, or lacks the target, id or time column.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        target: str | None,
        id_column: str | None = None,
        time_column: str | None = None,
        chunk_rows: int = 1_000,
    ):
        self.path = Path(path)
        self.target, self.id_column, self.time_column = target, id_column, time_column
        if chunk_rows < 1:
            raise ReplayError(f"chunk_rows must be at least 1 to replay {self.path}")
        self.chunk_rows = chunk_rows
        if self.path.suffix.lower() not in REPLAYABLE:
            raise ReplayError(
                f"cannot replay {self.path}: {self.path.suffix or 'no extension'} is not a "
                f"supported kind of file; use one of {', '.join(REPLAYABLE)}"
            )
        if not self.path.is_file():
            raise ReplayError(f"cannot replay {self.path}: no such file; check the source path")
        self.sep = "," if self.is_parquet else delimiter(self.path)
        with _reading(self.path):
            self._all_columns = self._header()
        for role, column in (("target", target), ("id", id_column), ("time", time_column)):
            if column is not None and column not in self._all_columns:
                raise ReplayError(
                    f"{self.path} has no {role} column {column!r}; its columns are: "
                    f"{', '.join(self._all_columns)}"
                )

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    def columns(self) -> list[str]:
        """The feature columns: every column but the target, id and time columns."""
        special = {self.target, self.id_column, self.time_column}
        return [column for column in self._all_columns if column not in special]

    def rows(self) -> int | None:
        """How many rows the file holds, when that is known without reading it (Parquet)."""
        if not self.is_parquet:
            return None
        with pq.ParquetFile(self.path) as parquet:
            return int(parquet.metadata.num_rows)

    def frame_head(self, n: int = 1_000) -> pd.DataFrame:
        """The first ``n`` rows, every column, as a DataFrame (for schema inference)."""
        if self.is_parquet:
            with pq.ParquetFile(self.path) as parquet:
                first = next(parquet.iter_batches(batch_size=max(n, 1)), None)
                return first.to_pandas().head(n) if first is not None else pd.DataFrame()
        with _reading(self.path):
            return pd.read_csv(self.path, sep=self.sep, nrows=n, dtype_backend="numpy_nullable")

    def features(self) -> dict[str, str]:
        """Each feature column's type, inferred from the first rows: ``numeric``,
        ``categorical`` or ``boolean``."""
        head = self.frame_head()
        return {column: _feature_type(head[column]) for column in self.columns()}

    def samples(self, *, rate: float | None = None, progress: bool = True) -> Iterator[Sample]:
        """Every row as a sample, at most ``rate`` per second when set (sleeping), with a
        progress bar on stderr when ``progress`` and stderr is a terminal."""
        bucket = TokenBucket(rate) if rate is not None else None
        with progress_bar(self.rows(), f"replay {self.path.name}", enabled=progress) as bar:
            index = 0
            for chunk in self._chunks():
                for row in chunk:
                    if bucket is not None:
                        bucket.wait(1)
                    yield self._sample(index, row)
                    index += 1
                bar.update(len(chunk))

    def _chunks(self) -> Iterator[list[dict[Any, Any]]]:
        # Reading happens inside the guard, so a bad line deep in the file is reported too;
        # the readers are context managers, so a replay stopped half-way closes its file.
        with _reading(self.path):
            if self.is_parquet:
                with pq.ParquetFile(self.path) as parquet:
                    for batch in parquet.iter_batches(batch_size=self.chunk_rows):
                        yield batch.to_pylist()
                return
            # Nullable dtypes keep an integer column with gaps in integers (NA for the gaps)
            # instead of floats, so codes and labels look the same in every chunk.
            with pd.read_csv(
                self.path, sep=self.sep, chunksize=self.chunk_rows, dtype_backend="numpy_nullable"
            ) as frames:
                for frame in frames:
                    yield frame.to_dict("records")

    def _sample(self, index: int, row: dict[Any, Any]) -> Sample:
        event_id = f"{self.path.stem}-{index:08d}"
        if self.id_column is not None and (given := plain(row.pop(self.id_column))) is not None:
            event_id = str(given)
        time = None
        if self.time_column is not None:
            time = self._time(row.pop(self.time_column), index)
        label = plain(row.pop(self.target)) if self.target is not None else None
        features = {str(column): plain(value) for column, value in row.items()}
        return Sample(index, event_id, features, label, time=time)

    def _time(self, value: Any, index: int) -> datetime | None:
        value = plain(value)  # datetimes come back as ISO text, numbers stay numbers
        if value is None:
            return None
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return datetime.fromtimestamp(value, UTC)  # numbers are Unix seconds
            moment = datetime.fromisoformat(str(value))
        except (ValueError, OverflowError, OSError):
            raise ReplayError(
                f"{self.path}, row {index}: time column {self.time_column!r} holds {value!r}, "
                f"which is neither ISO 8601 text nor Unix seconds"
            ) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def _header(self) -> list[str]:
        if self.is_parquet:
            with pq.ParquetFile(self.path) as parquet:
                return list(parquet.schema_arrow.names)
        return [str(column) for column in pd.read_csv(self.path, sep=self.sep, nrows=0).columns]


def delimiter(path: Path) -> str:
    """What separates the columns of the CSV file at ``path``: of a comma, a semicolon, a tab
    and a bar, the one its header line holds most of. Spreadsheets write semicolons where the
    decimal mark is a comma, and tabs when asked to; read with commas, such a file is one column.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "excel.csv").write_text("amount;country;default\\n120;FR;0\\n")
    >>> _ = (folder / "quoted.csv").write_text('"a;b",c\\n1,2\\n')
    >>> delimiter(folder / "excel.csv"), delimiter(folder / "quoted.csv")
    (';', ',')
    """
    with path.open("rb") as file:
        header = file.readline(1 << 20)
    return max(DELIMITERS, key=lambda candidate: header.count(candidate.encode()))


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    try:
        yield
    except _UNREADABLE as error:
        raise ReplayError(f"cannot read {path}: {error}") from None


def _feature_type(column: pd.Series[Any]) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "boolean"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    return "categorical"
