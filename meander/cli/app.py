"""The ``meander`` command line."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from meander import topics
from meander.bus import connect_bus
from meander.cli.options import ConfigOption, checked_settings, fail, settings_from, writable
from meander.cli.serve import keys_app, serve
from meander.consumers import COMPONENTS
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
app.add_typer(keys_app, name="keys")
app.command()(serve)

PER_STREAM = {"learner", "predictor", "trainer", "monitor"}  # one of each per stream
Component = enum.Enum("Component", {name: name for name in (*COMPONENTS, "all")})  # type: ignore[misc]


@app.command()
def demo(
    config: ConfigOption = None,
    events: Annotated[
        int, typer.Option(min=1, max=1_000_000_000, help="How many events to stream.")
    ] = 40_000,
    kafka: Annotated[
        bool,
        typer.Option(
            "--kafka",
            help="Use the Kafka and Redis of MEANDER_KAFKA_BOOTSTRAP / MEANDER_REDIS_URL.",
        ),
    ] = False,
    serve: Annotated[
        bool, typer.Option(help="Serve the API and the dashboard (api_port) while it runs.")
    ] = True,
    linger: Annotated[
        bool | None,
        typer.Option(help="Keep serving after the summary until Ctrl-C (default: on a terminal)."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=1, help="Events per second, to watch the dashboard live (default: max)."),
    ] = None,
) -> None:
    """Stream a drifting synthetic dataset through meander and report what happens."""
    from meander.demo.run import run_demo
    from meander.services.demo_server import DemoServer

    settings = settings_from(config)
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
        run_demo(
            settings,
            events=events,
            server=DemoServer if serve else None,
            linger=sys.stdin.isatty() if linger is None else linger,
            rate=rate,
        )
    except MeanderError as error:
        raise fail(error) from None


@app.command()
def run(
    component: Annotated[Component, typer.Argument(help="The component to run, or all.")],
    config: ConfigOption = None,
) -> None:
    """Run one long-lived component (or all of them in this process) until stopped."""
    names = COMPONENTS if component.value == "all" else (component.value,)
    from meander.consumers.assembly import run as run_components

    # The producer and the notifier use no model: they start without importing River.
    uses_models = not set(names) <= {"producer", "notifier"}
    settings = checked_settings(config) if uses_models else settings_from(config)
    if not settings.streams and set(names) <= PER_STREAM:
        # Else it starts, says it was built, and does nothing for ever (a config not given).
        typer.secho(
            f"nothing to run: the {component.value} runs for each configured stream, and the "
            "config names none; describe one under [[streams]] (in --config or $MEANDER_CONFIG)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    try:
        run_components(names, settings)
    except MeanderError as error:
        raise fail(error) from None


@topics_app.command("create")
def topics_create(config: ConfigOption = None) -> None:
    """Create every topic the configured streams need (existing ones are left alone), and
    say how many partitions each has."""
    from meander.runtime import check_state_topic

    settings = settings_from(config)
    layout = topics.layout(settings.streams)
    try:
        with connect_bus(settings) as bus:
            bus.create_topics(layout, topics.configs(settings.state_max_bytes))
            found = {name: bus.partitions(name) for name in layout}
            check_state_topic(bus, settings)
    except MeanderError as error:
        raise fail(error) from None
    for name, partitions in found.items():
        asked = (
            ""
            if partitions == layout[name]
            else f" (it existed; the config asks for {layout[name]})"
        )
        typer.echo(f"{name}\t{partitions} partition(s){asked}")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration, its models too, and print it as meander sees it."""
    settings = checked_settings(config)
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


def _refuse(error: MeanderError) -> typer.Exit:
    """Bad input (a file, a column, a spec, a setting): exit 2, as a usage error does."""
    typer.secho(f"error: {error}", fg="red", err=True)
    return typer.Exit(2)


@app.command()
def backtest(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet file: one labelled event per row, in time order.",
            exists=True,
            dir_okay=False,
        ),
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The label column.")],
    config: ConfigOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Champion spec, e.g. 'tree.HoeffdingTreeClassifier' (default: the stream's)."
        ),
    ] = None,
    label_delay: Annotated[
        int,
        typer.Option(
            min=0,
            help="Events between an event and its label (default 0: the labels of each chunk "
            "of 100 follow its predictions).",
        ),
    ] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full report here.", dir_okay=False)
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write a PNG of the rolling accuracy (MAE for regression), with drifts and "
            "promotions.",
            dir_okay=False,
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(
            help="The configured stream to use (default: the first), or a name for "
            "the inferred one."
        ),
    ] = None,
    monitor: Annotated[
        bool, typer.Option("--monitor/--no-monitor", help="Run the data drift monitor too.")
    ] = True,
) -> None:
    """Replay a labelled file through the closed loop (predictor, learner, trainer, monitor) on
    fresh embedded backends, and report what it served and decided.

    The stream comes from the config (or is inferred from the file: task from the target,
    features from the first rows). The headline is the prequential accuracy of what was served
    as champion; for regression it is the MAE, and the JSON's "accuracy" is null.
    """
    import json

    from meander.backtest.plot import plot_report
    from meander.backtest.report import build_report, summary
    from meander.backtest.run import run_backtest
    from meander.exceptions import ConfigError

    writable(json_out, "--json")
    writable(plot, "--plot")
    settings = settings_from(config)
    try:
        run = run_backtest(
            file,
            target=target,
            settings=settings,
            stream=stream,
            model=model,
            label_delay=label_delay,
            monitor=monitor,
            progress=True,
        )
    except ConfigError as error:
        raise _refuse(error) from None
    except MeanderError as error:
        raise fail(error) from None
    try:
        report = build_report(run)
    finally:
        run.close()
    typer.echo(summary(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report.data, indent=2, default=str) + "\n")
        typer.echo(f"report: {json_out}")
    if plot is not None:
        typer.echo(f"plot: {plot_report(report, plot)}")


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Where to write the model file.", dir_okay=False)],
    config: ConfigOption = None,
    stream: Annotated[str | None, typer.Option(help="Stream (default: the first).")] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="Version to export (default: the champion).")
    ] = None,
) -> None:
    """Write a stream's champion (or --version) from the registry as a plain pickle that River
    alone can load, with a JSON description beside it."""
    from meander.batch.model import open_registry
    from meander.exceptions import ConfigError
    from meander.models.export import export_model, sidecar_path

    settings = settings_from(config)
    try:
        registry, _ = open_registry(settings, stream)
        chosen = version if version is not None else registry.champion()
        path = export_model(registry, chosen, out)
        entry = registry.get(chosen) if chosen is not None else None
    except ConfigError as error:
        raise _refuse(error) from None
    except MeanderError as error:
        raise fail(error) from None
    assert entry is not None  # export_model refuses a registry without a champion
    typer.echo(f"{path}\nversion {entry.version} of stream {registry.stream!r}\nspec {entry.spec}")
    typer.echo(f"description: {sidecar_path(path)}")


@app.command()
def predict(
    file: Annotated[
        Path, typer.Argument(help="CSV or Parquet file to score.", exists=True, dir_okay=False)
    ],
    config: ConfigOption = None,
    stream: Annotated[str | None, typer.Option(help="Stream (default: the first).")] = None,
    model_file: Annotated[
        Path | None,
        typer.Option(
            help="An exported model (meander export) instead of the registry's champion.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output .csv or .parquet (default: FILE's stem + .predictions.csv)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Rows scored per chunk.")] = 1_000,
) -> None:
    """Score a file in chunks: the output keeps every column and adds `prediction`,
    `proba_<label>` for classifiers, and `error`, the reason a row was not scored."""
    from meander.batch.model import load_serving_model
    from meander.batch.score import model_task, score_file
    from meander.exceptions import ConfigError

    writable(out, "--out")
    settings = settings_from(config)
    try:
        model, config_of_stream, origin = load_serving_model(settings, stream, model_file)
        task = config_of_stream.task if config_of_stream is not None else model_task(model)
        result = score_file(file, out, model=model, task=task, stream=config_of_stream, batch=batch)
    except ConfigError as error:
        raise _refuse(error) from None
    except MeanderError as error:
        raise fail(error) from None
    typer.echo(
        f"{result.path}: {result.rows} rows, {result.scored} scored, {result.rejected} not "
        f"(see the error column), with {origin}"
    )
    if config_of_stream is None:
        typer.echo("no stream config: rows were not checked against a schema", err=True)
    if result.left_out:
        typer.secho(
            f"classes first met after the first chunk have no probability column: "
            f"{', '.join(sorted(result.left_out))}",
            fg="yellow",
            err=True,
        )
