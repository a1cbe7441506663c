"""The ``meander`` command line."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from consumers import AVAILABLE, COMPONENTS
from meander import topics
from meander.bus import connect_bus
from meander.config import Settings, load_settings
from meander.exceptions import MeanderError

__all__ = ["app"]

app = typer.Typer(
    name="meander",
    help="Streaming MLOps for online models: events in from Kafka, predictions out, models that "
    "learn from delayed feedback, and drift-driven retraining with validated promotion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Create and inspect the topics meander uses.", no_args_is_help=True)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
infra_app = typer.Typer(
    help="Run a local Kafka broker and Redis server for development and tests.",
    no_args_is_help=True,
)
app.add_typer(topics_app, name="topics")
app.add_typer(config_app, name="config")
app.add_typer(infra_app, name="infra")

Component = enum.Enum("Component", {name: name for name in (*COMPONENTS, "all")})  # type: ignore[misc]
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


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except MeanderError as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(2) from None


def _fail(error: MeanderError) -> typer.Exit:
    typer.secho(f"error: {error}", fg="red", err=True)
    return typer.Exit(1)


@app.command()
def demo(
    config: ConfigOption = None,
    events: Annotated[int, typer.Option(help="How many events to stream.")] = 40_000,
    kafka: Annotated[
        bool,
        typer.Option(
            "--kafka",
            help="Use the Kafka and Redis of MEANDER_KAFKA_BOOTSTRAP / MEANDER_REDIS_URL.",
        ),
    ] = False,
) -> None:
    """Stream a drifting synthetic dataset through meander and report what happens."""
    from meander.demo import run_demo

    settings = _settings(config)
    if kafka and not (settings.uses_kafka and settings.uses_redis):
        typer.secho(
            "--kafka needs MEANDER_KAFKA_BOOTSTRAP and MEANDER_REDIS_URL "
            "(make infra-up prints them)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    if not kafka:
        settings = settings.model_copy(update={"kafka_bootstrap": None, "redis_url": None})
    try:
        run_demo(settings, events=events)
    except MeanderError as error:
        raise _fail(error) from None


@app.command()
def run(
    component: Annotated[Component, typer.Argument(help="The component to run, or all.")],
    config: ConfigOption = None,
) -> None:
    """Run one long-lived component (or all of them in this process) until stopped."""
    names = COMPONENTS if component.value == "all" else (component.value,)
    missing = [name for name in names if name not in AVAILABLE]
    if missing:
        typer.secho(f"not in this build yet: {', '.join(missing)}", fg="red", err=True)
        raise typer.Exit(2)
    from consumers.assembly import run as run_components

    try:
        run_components(names, _settings(config))
    except MeanderError as error:
        raise _fail(error) from None


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default: api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api_port).")] = None,
) -> None:
    """Serve the HTTP API (health, readiness, metrics)."""
    import uvicorn

    from services import create_app

    settings = _settings(config)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
    )


@topics_app.command("create")
def topics_create(config: ConfigOption = None) -> None:
    """Create every topic the configured streams need (existing ones are left alone)."""
    settings = _settings(config)
    layout = topics.layout(settings.streams)
    try:
        with connect_bus(settings) as bus:
            bus.create_topics(layout)
    except MeanderError as error:
        raise _fail(error) from None
    for name, partitions in layout.items():
        typer.echo(f"{name}\t{partitions} partition(s)")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and print it as meander sees it."""
    settings = _settings(config)
    typer.echo(settings.model_dump_json(indent=2))


@infra_app.command("up")
def infra_up(
    kafka_port: Annotated[int, typer.Option(help="Kafka listener port.")] = 9092,
    redis_port: Annotated[int, typer.Option(help="Redis port.")] = 6379,
) -> None:
    """Start Kafka (KRaft, from Maven Central's jars) and Redis on loopback, detached."""
    from meander.infra.__main__ import main

    raise typer.Exit(main(["up", "--kafka-port", str(kafka_port), "--redis-port", str(redis_port)]))


@infra_app.command("down")
def infra_down() -> None:
    """Stop the Kafka and Redis that `meander infra up` started."""
    from meander.infra.__main__ import main

    raise typer.Exit(main(["down"]))


@infra_app.command("status")
def infra_status() -> None:
    """Say what `meander infra up` started and whether it still runs."""
    from meander.infra.__main__ import main

    raise typer.Exit(main(["status"]))
