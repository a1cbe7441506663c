"""What a backtest served and decided, read back from its topics as any subscriber would.

The headline figure is the prequential score of what was served as the champion, whatever the
version: accuracy for classification, mean absolute error (MAE) for regression, where the
``accuracy`` key is None. It comes from the learner's state and is checked against the
predictions topic: every event the predictor did not dead-letter must have exactly one
champion prediction there, and scoring those predictions against the file's labels must give
the same figure. Drifts, promotions and rollbacks are placed at the index of the file row
whose event they were found at.

>>> import pathlib, tempfile
>>> import pandas as pd
>>> from meander.producers import synthetic
>>> from meander.backtest.run import run_backtest
>>> rows = [{**s.features, "y": s.label} for s in synthetic("sea", seed=3).samples(200)]
>>> path = pathlib.Path(tempfile.mkdtemp()) / "sea.csv"
>>> pd.DataFrame(rows).to_csv(path, index=False)
>>> run = run_backtest(path, target="y", monitor=False)
>>> report = build_report(run)
>>> report.data["events"], report.data["check"]["consistent"], report.data["promotions"]
(200, True, [])
>>> report.data["accuracy"] == report.data["check"]["accuracy"]
True
>>> run.close()
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meander import topics
from meander.backtest.run import BacktestRun
from meander.bus import Bus, TopicPartition
from meander.events import Alert, DeadLetter, ModelEvent, Payload, Prediction, decode_batch
from meander.models.inference import label_problem
from meander.models.registry import Registry
from meander.models.signing import signer_for

__all__ = ["Report", "build_report", "read_topic", "summary"]


@dataclass
class Report:
    """``data`` is the JSON report; ``scores`` the per-row score of the champion's answer
    (1.0 right / 0.0 wrong, or the absolute error), in row order, for the rolling curve."""

    data: dict[str, Any]
    scores: list[tuple[int, float]]

    @property
    def metric(self) -> str:
        return "mae" if self.data["task"] == "regression" else "accuracy"


def read_topic(bus: Bus, topic: str) -> list[Payload]:
    """Every payload on ``topic``, partition by partition from the start; malformed ones are
    left out."""
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    payloads: list[Payload] = []
    with bus.assign(partitions) as reader:
        for partition in partitions:
            reader.seek(partition, 0)
        while batch := reader.consume(10_000, 0.0):
            payloads.extend(envelope.payload for envelope in decode_batch(batch)[0])
    return payloads


def build_report(run: BacktestRun) -> Report:
    """Read the run's topics and registry and put the figures together."""
    bus, stream = run.runtime.bus, run.stream
    index = {event_id: i for i, event_id in enumerate(run.event_ids)}
    answers: dict[str, list[Any]] = {}
    for payload in read_topic(bus, topics.predictions(stream.name)):
        if isinstance(payload, Prediction) and payload.role == "champion":
            answers.setdefault(payload.event_id, []).append(payload.prediction)
    regression = stream.task == "regression"
    # As the learner scores: an answer of None (a model that had learned nothing) is no
    # answer, neither right nor wrong; a label it refuses (dead-lettered) scores nothing.
    classes = stream.label_classes
    scores = [
        (i, _score(label, answers[event_id][0], regression))
        for i, (event_id, label) in enumerate(zip(run.event_ids, run.labels, strict=True))
        if label is not None
        and event_id in answers
        and answers[event_id][0] is not None
        and label_problem(label, stream.task, classes) is None
    ]
    dead = [p for p in read_topic(bus, topics.DEADLETTER) if isinstance(p, DeadLetter)]
    served = run.state.served.get("champion")
    served_report = served.report() if served is not None else {"n": 0}
    metric = "mae" if regression else "accuracy"
    data: dict[str, Any] = {
        "file": str(run.path),
        "stream": stream.name,
        "task": stream.task,
        "model": stream.model,
        "label_delay": run.label_delay,
        "monitor": run.monitor,
        "events": run.events,
        "labels": run.state.labels,
        "accuracy": None if regression else served_report.get("accuracy"),
        "mae": served_report.get("mae") if regression else None,
        "served": served_report,
        "check": _check(run, answers, dead, scores, metric, served_report.get(metric)),
        "seconds": round(run.seconds, 3),
        "events_per_second": round(run.events / run.seconds, 1) if run.seconds else None,
        **_decisions(bus, stream.name, index),
        **_registry(run),
        "dead_letters": len(dead),
        "dead_letter_reasons": dict(
            Counter(f"{d.component}: {d.reason}"[:160] for d in dead).most_common(10)
        ),
        "ignored_columns": run.ignored_columns,
    }
    return Report(data, scores)


def summary(report: Report) -> str:
    """The report in a few lines for a terminal."""
    data = report.data
    figure = data[report.metric]
    shown = "n/a" if figure is None else f"{figure:.4f}"
    champion = data["champion"]
    lines = [
        f"backtest of {data['file']}: stream {data['stream']!r} ({data['task']}), "
        f"model {data['model']}",
        f"  {data['events']} events, {data['labels']} labels learned, label delay "
        f"{data['label_delay']}, {data['events_per_second']} events/s",
        f"  served {report.metric}: {shown}",
        f"  concept drifts at: {_listed(data['drifts'])}",
        f"  promotions at: {_listed(data['promotions'])}; rollbacks at: "
        f"{_listed(data['rolled_back'])}",
        f"  champion: v{champion['version']} ({champion['spec']}), lineage "
        + " <- ".join(f"v{entry['version']}" for entry in champion["lineage"]),
        f"  dead letters: {data['dead_letters']}",
    ]
    if data["ignored_columns"]:
        lines.append(f"  columns left out (not features): {', '.join(data['ignored_columns'])}")
    if not data["check"]["consistent"]:
        lines.append(f"  WARNING: the predictions topic disagrees: {data['check']}")
    return "\n".join(lines)


def _score(label: Any, prediction: Any, regression: bool) -> float:
    if regression:
        return abs(float(label) - float(prediction))
    return 1.0 if prediction == label else 0.0


def _check(
    run: BacktestRun,
    answers: dict[str, list[Any]],
    dead: Sequence[DeadLetter],
    scores: Sequence[tuple[int, float]],
    metric: str,
    served: float | None,
) -> dict[str, Any]:
    events_topic = topics.events(run.stream.name)
    rejected = sum(1 for d in dead if d.component == "predictor" and d.topic == events_topic)
    unanswered = sum(1 for event_id in run.event_ids if event_id not in answers)
    repeated = sum(1 for found in answers.values() if len(found) > 1)
    recomputed = sum(score for _, score in scores) / len(scores) if scores else None
    agrees = (recomputed is None and served is None) or (
        recomputed is not None and served is not None and math.isclose(recomputed, served)
    )
    return {
        "champion_predictions": sum(len(found) for found in answers.values()),
        "events_dead_lettered": rejected,
        "events_without_prediction": unanswered,
        "events_with_several_predictions": repeated,
        metric: recomputed,
        "consistent": agrees and repeated == 0 and unanswered == rejected,
    }


def _decisions(bus: Bus, stream: str, index: dict[str, int]) -> dict[str, Any]:
    alerts = [
        p for p in read_topic(bus, topics.ALERTS) if isinstance(p, Alert) and p.stream == stream
    ]
    changes = [
        p
        for p in read_topic(bus, topics.MODELS)
        if isinstance(p, ModelEvent) and p.stream == stream
    ]

    def where(found: Sequence[Alert | ModelEvent]) -> list[int]:
        return sorted({index[f.at_event] for f in found if f.at_event in index})

    return {
        "drifts": where([a for a in alerts if a.kind == "concept_drift"]),
        "data_drifts": where([a for a in alerts if a.kind == "data_drift"]),
        # The first champion is promoted from the config, over no previous version.
        "promotions": where(
            [c for c in changes if c.action == "promoted" and c.previous_version is not None]
        ),
        "rolled_back": where([c for c in changes if c.action == "rolled_back"]),
        "alerts": dict(Counter(a.kind for a in alerts)),
        "model_events": dict(Counter(c.action for c in changes)),
    }


def _registry(run: BacktestRun) -> dict[str, Any]:
    registry = Registry(run.runtime.store, run.stream.name, signer_for(run.runtime.settings))
    version = registry.champion()
    lineage = registry.lineage(version) if version is not None else []
    metrics = {str(v): m.report() for v, m in sorted(run.state.metrics.items())}
    return {
        "champion": {
            "version": version,
            "spec": lineage[0].spec if lineage else None,
            "lineage": [
                {"version": e.version, "spec": e.spec, "status": e.status, "reason": e.reason}
                for e in lineage
            ],
        },
        "versions": metrics,
    }


def _listed(indices: Sequence[int]) -> str:
    if not indices:
        return "none"
    shown = ", ".join(str(i) for i in indices[:12])
    return shown + (f" ... ({len(indices)} in all)" if len(indices) > 12 else "")
