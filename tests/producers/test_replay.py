"""File replay: CSV and Parquet rows as samples, in chunks, with missing values as None."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from meander.producers import ReplayError
from meander.producers.replay import FileSource

KINDS = ("loans.csv", "loans.parquet")

WriteFile = Callable[[pd.DataFrame, str], Path]  # the write_file fixture (conftest.py)


@pytest.mark.parametrize("name", KINDS)
def test_rows_become_samples_with_the_target_as_label(
    write_file: WriteFile, loans: pd.DataFrame, name: str
) -> None:
    source = FileSource(write_file(loans, name), target="default", chunk_rows=2)
    samples = list(source.samples(progress=False))
    assert [s.event_id for s in samples] == [f"loans-{i:08d}" for i in range(5)]
    assert [s.label for s in samples] == [0, 1, None, 0, 1]
    assert samples[0].features == {
        "loan_id": "a1",
        "amount": 120.5,
        "country": "FR",
        "term": 12,
        "at": "2024-05-01T12:00:00Z",
    }
    assert samples[1].features["amount"] is None  # NaN is a missing value
    assert samples[2].features["country"] is None
    for sample in samples:
        assert all(not isinstance(v, np.generic) for v in sample.features.values())
        assert not isinstance(sample.label, np.generic)
        orjson.dumps(sample.features)


@pytest.mark.parametrize("name", KINDS)
def test_id_and_time_columns_give_the_event_id_and_time(
    write_file: WriteFile, loans: pd.DataFrame, name: str
) -> None:
    source = FileSource(
        write_file(loans, name), target="default", id_column="loan_id", time_column="at"
    )
    first = next(source.samples(progress=False))
    assert first.event_id == "a1"
    assert first.time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert set(first.features) == {"amount", "country", "term"}
    assert source.columns() == ["amount", "country", "term"]


def test_parquet_timestamps_and_numbers_as_times(write_file: WriteFile) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "when": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:01", "NaT"]),
            "seconds": [0, 60, 120],
        }
    )
    path = write_file(frame, "times.parquet")
    stamped = list(FileSource(path, target=None, time_column="when").samples(progress=False))
    assert [s.time for s in stamped] == [
        datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 1, tzinfo=UTC),
        None,
    ]
    numbered = list(FileSource(path, target=None, time_column="seconds").samples(progress=False))
    assert numbered[1].time == datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
    assert all(s.label is None for s in stamped)


def test_an_unreadable_time_names_the_file_row_and_column(write_file: WriteFile) -> None:
    path = write_file(pd.DataFrame({"x": [1, 2], "when": ["2024-01-01", "soon"]}), "t.csv")
    samples = FileSource(path, target=None, time_column="when").samples(progress=False)
    with pytest.raises(ReplayError, match=r"t\.csv, row 1: time column 'when' holds 'soon'"):
        list(samples)


def test_integer_columns_with_gaps_stay_integers_in_every_chunk(write_file: WriteFile) -> None:
    # pandas would read a gap as NaN and turn the whole chunk's codes into floats.
    frame = pd.DataFrame({"code": [3, 4, None, 5], "y": [1, None, 0, 1]}, dtype="Int64")
    path = write_file(frame, "codes.csv")
    samples = list(FileSource(path, target="y", chunk_rows=2).samples(progress=False))
    assert [s.features["code"] for s in samples] == [3, 4, None, 5]
    assert [s.label for s in samples] == [1, None, 0, 1]
    assert all(type(s.label) is int for s in samples if s.label is not None)


@pytest.mark.parametrize("name", KINDS)
def test_features_are_inferred_from_the_first_rows(
    write_file: WriteFile, loans: pd.DataFrame, name: str
) -> None:
    frame = loans.assign(flag=[True, False, True, True, False])
    source = FileSource(write_file(frame, name), target="default", id_column="loan_id")
    assert source.features() == {
        "amount": "numeric",
        "country": "categorical",
        "term": "numeric",
        "at": "categorical",
        "flag": "boolean",
    }
    assert len(source.frame_head(2)) == 2


def test_the_file_is_read_a_chunk_at_a_time(
    write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_file(pd.DataFrame({"x": range(10), "y": [0, 1] * 5}), "big.csv")
    requested: list[object] = []
    original = pd.read_csv

    def spy(*args: object, **kwargs: object) -> object:
        requested.append(kwargs.get("chunksize"))
        return original(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(pd, "read_csv", spy)
    source = FileSource(path, target="y", chunk_rows=4)
    assert len(list(source.samples(progress=False))) == 10
    assert requested[-1] == 4


def test_parquet_rows_are_known_without_reading(write_file: WriteFile) -> None:
    path = write_file(pd.DataFrame({"x": range(7)}), "seven.parquet")
    assert FileSource(path, target=None).rows() == 7
    assert FileSource(write_file(pd.DataFrame({"x": [1]}), "one.csv"), target=None).rows() is None


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match=r"cannot replay .*nowhere\.csv: no such file"):
        FileSource(tmp_path / "nowhere.csv", target="y")


def test_an_unsupported_extension_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ReplayError, match=r"data\.xlsx: \.xlsx is not a supported .*\.csv"):
        FileSource(path, target="y")


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize(
    ("arguments", "role"),
    [({"target": "label"}, "target"), ({"target": None, "id_column": "key"}, "id")],
)
def test_a_missing_column_is_named_with_the_columns_there_are(
    write_file: WriteFile,
    loans: pd.DataFrame,
    name: str,
    arguments: dict[str, str | None],
    role: str,
) -> None:
    path = write_file(loans, name)
    missing = arguments["target"] or arguments["id_column"]
    with pytest.raises(
        ReplayError, match=rf"has no {role} column '{missing}'; its columns are: loan_id"
    ):
        FileSource(path, **arguments)  # type: ignore[arg-type]


def test_a_file_that_is_not_what_it_says_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ReplayError, match=r"cannot read .*broken\.parquet"):
        FileSource(path, target=None)


def test_an_empty_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ReplayError, match=r"cannot read .*empty\.csv"):
        FileSource(path, target=None)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_separated_by_semicolons_tabs_or_bars_reads_as_with_commas(
    tmp_path: Path, loans: pd.DataFrame, sep: str
) -> None:
    # What a spreadsheet writes where the decimal mark is a comma, or when asked for tabs.
    commas, other = tmp_path / "commas.csv", tmp_path / "other.csv"
    loans.to_csv(commas, index=False)
    loans.to_csv(other, index=False, sep=sep)

    def read(path: Path) -> tuple[dict[str, str], list[Any]]:
        source = FileSource(path, target="default", id_column="loan_id")
        return source.features(), [(s.event_id, s.features, s.label) for s in source.samples()]

    assert read(other) == read(commas)
