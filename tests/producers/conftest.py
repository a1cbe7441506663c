"""Files to replay, written into the test's temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

WriteFile = Callable[[pd.DataFrame, str], Path]


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """Writes a frame as ``name`` (.csv or .parquet, by its extension) and returns the path."""

    def write(frame: pd.DataFrame, name: str) -> Path:
        path = tmp_path / name
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        return path

    return write


@pytest.fixture
def loans() -> pd.DataFrame:
    """Five loans with gaps in a numeric feature, a categorical feature and the target."""
    return pd.DataFrame(
        {
            "loan_id": ["a1", "a2", "a3", "a4", "a5"],
            "amount": [120.5, None, 80.0, 42.25, 10.0],
            "country": ["FR", "DE", None, "FR", "ES"],
            "term": [12, 24, 36, 12, 6],
            "at": [
                "2024-05-01T12:00:00Z",
                "2024-05-01T12:00:01Z",
                "2024-05-01T12:00:02Z",
                "2024-05-01T12:00:03Z",
                "2024-05-01T12:00:04Z",
            ],
            "default": [0, 1, None, 0, 1],
        }
    )
