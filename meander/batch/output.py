"""Where batch scoring writes: a CSV or Parquet file that appears whole, or not at all.

Chunks go to a hidden file beside the target (a CSV) or to hidden part files (Parquet), and
the target is put in place by a rename once the last chunk is in; a failure leaves no half
file behind. Parquet needs one type per column, while a chunk types its columns from what it
holds (a prediction column that is empty in one chunk and integer in the next), so the parts
are joined under the widest types at the end.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "out.parquet"
>>> with Output(path) as output:
...     output.write(pd.DataFrame({"prediction": [None, None]}, dtype=object))
...     output.write(pd.DataFrame({"prediction": [1, 2]}))
>>> pd.read_parquet(path)["prediction"].tolist()
[nan, nan, 1.0, 2.0]
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from meander.exceptions import ConfigError

__all__ = ["BatchError", "Output"]


class BatchError(ConfigError):
    """A file cannot be scored or written: unreadable, of an unknown kind, clashing columns."""


class Output:
    """Frames written one after another to ``path`` (CSV or Parquet, by its extension)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.parquet = self.path.suffix.lower() == ".parquet"
        hidden = f".{self.path.name}.{os.getpid()}.tmp"
        self._temporary = self.path.with_name(hidden)
        self._parts = self.path.with_name(hidden + ".parts")
        self._written = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self._written == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.parquet:
            self._parts.mkdir(exist_ok=True)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_table(table, self._parts / f"{self._written:08d}.parquet")
        else:
            first = self._written == 0
            frame.to_csv(self._temporary, mode="w" if first else "a", header=first, index=False)
        self._written += 1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is None and self._written:
                if self.parquet:
                    self._join_parts()
                os.replace(self._temporary, self.path)
        finally:
            self._temporary.unlink(missing_ok=True)
            shutil.rmtree(self._parts, ignore_errors=True)

    def _join_parts(self) -> None:
        parts = sorted(self._parts.iterdir())
        try:
            schema = pa.unify_schemas(
                [pq.read_schema(part) for part in parts], promote_options="permissive"
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
            raise BatchError(
                f"cannot write {self.path}: a column holds values of different kinds in "
                f"different chunks ({error}); write a .csv instead, or fix the column"
            ) from None
        with pq.ParquetWriter(self._temporary, schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part).select(schema.names).cast(schema))
