"""Everything that publishes source events and feedback into meander.

Sources yield :class:`Sample` objects: :func:`synthetic` drifting streams built on River's
generators, and :class:`FileSource` replays of CSV or Parquet files. A :class:`Publisher` encodes
them as feature events and delayed, lossy feedback; the ``producer`` component
(:mod:`meander.producers.runner`, ``meander run producer``) publishes a configured source on the
bus.
"""

from typing import TYPE_CHECKING, Any

from meander.producers.exceptions import ReplayError, SourceError
from meander.producers.labels import LabelDelay, Publisher
from meander.producers.sample import Sample
from meander.producers.synthetic import (
    DRIFTS,
    GENERATORS,
    Drift,
    DriftingStream,
    SyntheticStream,
    publish_stream,
    synthetic,
)

__all__ = [
    "DRIFTS",
    "GENERATORS",
    "Drift",
    "DriftingStream",
    "FileSource",
    "LabelDelay",
    "Publisher",
    "ReplayError",
    "Sample",
    "SourceError",
    "SyntheticStream",
    "publish_stream",
    "synthetic",
]

if TYPE_CHECKING:
    from meander.producers.replay import FileSource


def __getattr__(name: str) -> Any:
    # The file readers (pandas, pyarrow) are imported only by a process that replays a file.
    if name == "FileSource":
        from meander.producers.replay import FileSource

        return FileSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
