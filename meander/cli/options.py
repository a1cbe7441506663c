"""What the ``meander`` commands share: the --config option, loading settings, failing clearly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from meander.config import Settings, load_settings
from meander.exceptions import MeanderError

__all__ = ["ConfigOption", "checked_settings", "fail", "settings_from", "writable"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $MEANDER_CONFIG).",
        exists=True,
        dir_okay=False,
    ),
]


def settings_from(config: Path | None, **overrides: object) -> Settings:
    """The settings, or exit 2 with the message that names the key and why."""
    try:
        return load_settings(config, **overrides)
    except MeanderError as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(2) from None


def checked_settings(config: Path | None, **overrides: object) -> Settings:
    """The settings with every stream's model and detectors tried (see
    :mod:`meander.models.trial`), or exit 2 with the message that names the key and why."""
    from meander.models.trial import check_models  # River: only for commands that use models

    settings = settings_from(config, **overrides)
    try:
        check_models(settings)
    except MeanderError as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(2) from None
    return settings


def writable(path: Path | None, option: str) -> None:
    """Exit 2, before any work, when ``option``'s file cannot be written: its folder is missing
    or not writable. Found only when the file is written, after a long run, the run is lost."""
    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        problem = "does not exist"
    elif not os.access(folder, os.W_OK):
        problem = "is not writable"
    else:
        return
    typer.secho(f"{option}: cannot write {path}: folder {folder} {problem}", fg="red", err=True)
    raise typer.Exit(2)


def fail(error: MeanderError) -> typer.Exit:
    """Exit 1 after printing ``error``."""
    typer.secho(f"error: {error}", fg="red", err=True)
    return typer.Exit(1)
