"""What the ``meander`` commands share: the --config option, loading settings, failing clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meander.config import Settings, load_settings
from meander.exceptions import MeanderError

__all__ = ["ConfigOption", "checked_settings", "fail", "settings_from"]

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


def fail(error: MeanderError) -> typer.Exit:
    """Exit 1 after printing ``error``."""
    typer.secho(f"error: {error}", fg="red", err=True)
    return typer.Exit(1)
