"""The errors of the producers: a source that cannot be used, a file that cannot be replayed.

Both are configuration problems, so both are :class:`~meander.exceptions.ConfigError`: the CLI
reports them the same way, and the message names the source, the file or the column to fix.
"""

from __future__ import annotations

from meander.exceptions import ConfigError

__all__ = ["ReplayError", "SourceError"]


class SourceError(ConfigError):
    """A producer source cannot be used: unknown generator, unsupported drift, bad settings."""


class ReplayError(SourceError):
    """A file cannot be replayed: it is missing, of an unknown kind, or lacks a named column."""
