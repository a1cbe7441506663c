"""Which model ``meander predict`` and ``meander export`` use, and the stream it belongs to.

The registry is the configured one (Redis, or the process's embedded store); a stream is the
one named, else the first configured. A stream that is named but not configured still has a
registry (it is keyed by name only), just no schema to check rows against. An exported model
file brings its stream's name in its sidecar, which finds the config when there is one.

>>> from meander.config import Settings
>>> settings = Settings(streams=[{"name": "fraud", "task": "binary",
...                               "features": {"amount": "numeric"}}])
>>> name, stream = pick_stream(settings, None)
>>> name, stream.task
('fraud', 'binary')
>>> pick_stream(Settings(), "loans")
('loans', None)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meander.config import Settings, StreamConfig
from meander.exceptions import ConfigError, RegistryError
from meander.models.export import load_exported, sidecar_path
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.store import open_store

__all__ = ["ServingModel", "load_serving_model", "open_registry", "pick_stream"]

ServingModel = tuple[Any, StreamConfig | None, str]


def pick_stream(settings: Settings, name: str | None) -> tuple[str, StreamConfig | None]:
    """The stream's name and, when configured, its config."""
    if name is not None:
        if not settings.streams:
            return name, None
        return name, settings.stream(name)
    if not settings.streams:
        raise ConfigError(
            "no stream is configured: name one with --stream, or pass a config file (--config "
            "or MEANDER_CONFIG) that describes it"
        )
    return settings.streams[0].name, settings.streams[0]


def open_registry(settings: Settings, name: str | None) -> tuple[Registry, StreamConfig | None]:
    """The registry of the stream :func:`pick_stream` picks, on the configured store."""
    stream, config = pick_stream(settings, name)
    return Registry(open_store(settings), stream, signer_for(settings)), config


def load_serving_model(
    settings: Settings, name: str | None, model_file: Path | None = None
) -> ServingModel:
    """(model, stream config or None, where the model came from in words).

    From ``model_file`` when given, else the stream's registry champion.
    """
    if model_file is not None:
        model = load_exported(model_file)
        sidecar = sidecar_path(model_file)
        named = json.loads(sidecar.read_text()).get("stream") if sidecar.exists() else None
        known = {stream.name for stream in settings.streams}
        config = None
        if name is not None:
            config = pick_stream(settings, name)[1]
        elif named in known:
            config = settings.stream(named)
        return model, config, f"model file {model_file}"
    registry, config = open_registry(settings, name)
    version = registry.champion()
    if version is None:
        raise RegistryError(
            f"stream {registry.stream!r} has no champion in the registry to score with; run "
            f"its learner first, or pass --model-file with an exported model"
        )
    model, _ = registry.load(version)
    spec = registry.get(version).spec
    return model, config, f"v{version} of stream {registry.stream!r} ({spec})"
