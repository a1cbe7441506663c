"""The words meander's parts share, each defined once: alert severities, model lifecycle actions,
the components' names, and the source of the predictions the service serves itself.

Each word list is a ``Literal`` type (what pydantic models and mypy check against); the tuples
beside them are derived from it, in order.

>>> SEVERITIES
('info', 'warning', 'critical')
>>> COMPONENTS
('predictor', 'learner', 'monitor', 'trainer', 'notifier', 'producer')
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ACTIONS",
    "ALERT_KINDS",
    "COMPONENTS",
    "KINDS",
    "SERVED_SOURCE",
    "SEVERITIES",
    "Action",
    "AlertKind",
    "ComponentName",
    "Severity",
]

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)  # least severe first

Action = Literal[
    "retrain_requested", "challenger_trained", "validated", "rejected", "promoted", "rolled_back"
]
ACTIONS: tuple[Action, ...] = get_args(Action)

AlertKind = Literal[
    "concept_drift",
    "concept_drift_warning",
    "data_drift",
    "missing_values",
    "schema_violations",
    "performance",
]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
KINDS: tuple[str, ...] = ALERT_KINDS + ACTIONS  # what a webhook or a subscription may ask for

ComponentName = Literal["predictor", "learner", "monitor", "trainer", "notifier", "producer"]
COMPONENTS: tuple[ComponentName, ...] = get_args(ComponentName)  # each is `meander run NAME`

SERVED_SOURCE = "/meander/service/predict"
"""The CloudEvents source of events the service scored synchronously (``POST .../predict``):
their champion prediction is already on ``S.predictions``, so predictors pass them by; the
learner and the monitor read them like any other."""
