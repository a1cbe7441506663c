"""``meander serve`` (the HTTP API) and ``meander keys`` (API keys for it)."""

from __future__ import annotations

from typing import Annotated

import typer

from meander.cli.options import ConfigOption, checked_settings
from meander.config.service import SCOPES
from meander.consumers import COMPONENTS

__all__ = ["keys_app", "serve"]

keys_app = typer.Typer(help="API keys for the HTTP service.", no_args_is_help=True)


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default: api_host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65_535, help="Port (default: api_port).")
    ] = None,
    with_: Annotated[
        str,
        typer.Option(
            "--with",
            help="Also run these loop components in this process: comma-separated names or "
            f"'all' ({', '.join(COMPONENTS)}). Overrides service.components.",
        ),
    ] = "",
) -> None:
    """Serve the HTTP API: publish, predict, live predictions and alerts, models, dashboard."""
    import uvicorn

    from meander.services import create_app
    from meander.services.connections import protocols

    settings = checked_settings(config)
    if with_:
        names = list(COMPONENTS) if with_ == "all" else [n.strip() for n in with_.split(",")]
        unknown = sorted(set(names) - set(COMPONENTS))
        if unknown:
            typer.secho(
                f"--with: unknown component(s) {', '.join(unknown)}; "
                f"choose from {', '.join(COMPONENTS)} or all",
                fg="red",
                err=True,
            )
            raise typer.Exit(2)
        service = settings.service.model_copy(update={"components": names})
        settings = settings.model_copy(update={"service": service})
    from meander.logs import configure_logging

    configure_logging(settings, component="service")
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through meander's handler, as JSON by default
        **protocols(settings.service),  # request deadlines, a connection cap, stalled peers cut
    )


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Option(help="Who the key is for; shown in logs and 403s.")],
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated, of {', '.join(SCOPES)} (admin implies all).")
    ] = "read",
) -> None:
    """Make an API key: prints the key (once, keep it) and the config entry that accepts it."""
    from meander.services.auth import new_key

    wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
    unknown = sorted(set(wanted) - set(SCOPES))
    if unknown or not wanted:
        typer.secho(
            f"--scopes: unknown scope(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SCOPES)}",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    key, digest = new_key()
    typer.echo(f"key (shown once, store it now): {key}\n")
    typer.echo("add to the config file:\n")
    typer.echo("[[service.api_keys]]")
    typer.echo(f'name = "{name}"')
    typer.echo(f'digest = "{digest}"')
    typer.echo(f"scopes = [{', '.join(repr(s).replace(chr(39), chr(34)) for s in wanted)}]")
