"""Alerts in Alertmanager's webhook format (version 4), for receivers written for Alertmanager.

A subscription with ``format = "alertmanager"`` gets the body Alertmanager POSTs to a
``webhook_config`` receiver: one group holding the alert, firing (a meander alert is a finding
at one moment; it does not resolve later). Labels identify the alert and group it; what was
measured goes in the annotations. Model lifecycle events have no Alertmanager counterpart and
are not sent in this format.

>>> from datetime import UTC, datetime
>>> alert = Alert(kind="data_drift", stream="fraud", severity="warning", feature="amount",
...               statistic="psi", value=0.31, threshold=0.2,
...               detected_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
>>> body = payload(alert, event_id="e1", receiver="sub_1")
>>> body["version"], body["status"], body["groupKey"]
('4', 'firing', '{}:{alertname="DataDrift", stream="fraud"}')
>>> body["alerts"][0]["labels"]
{'alertname': 'DataDrift', 'stream': 'fraud', 'severity': 'warning', 'kind': 'data_drift', \
'feature': 'amount'}
>>> body["alerts"][0]["annotations"]["summary"]
'data drift on fraud (feature amount): psi = 0.31 (threshold 0.2)'
>>> body["alerts"][0]["startsAt"], body["alerts"][0]["endsAt"]
('2025-01-02T03:04:05Z', '0001-01-01T00:00:00Z')
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import orjson

from meander.events import Alert
from meander.events.headers import rfc3339

__all__ = ["CONTENT_TYPE", "VERSION", "alertname", "encode_payload", "payload"]

CONTENT_TYPE = "application/json"
VERSION = "4"
# Alertmanager's Go zero time: what it sends as endsAt for an alert that has not resolved.
NOT_ENDED = "0001-01-01T00:00:00Z"


def alertname(kind: str) -> str:
    """The ``alertname`` label of an alert kind, in Prometheus' CamelCase.

    >>> alertname("concept_drift_warning")
    'ConceptDriftWarning'
    """
    return "".join(word.capitalize() for word in kind.split("_"))


def payload(
    alert: Alert, *, event_id: str, receiver: str, external_url: str = ""
) -> dict[str, Any]:
    """The version 4 webhook payload that carries ``alert`` (read on ``meander.alerts`` as
    ``event_id``) to ``receiver``; ``external_url`` is where meander's API is reached, if known.
    """
    labels = _labels(alert)
    group = {"alertname": labels["alertname"], "stream": alert.stream}
    annotations = _annotations(alert, event_id)
    query = urlencode({"stream": alert.stream, "kind": alert.kind})
    return {
        "version": VERSION,
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.detected_at),
                "endsAt": NOT_ENDED,
                "generatorURL": f"{external_url}/v1/alerts?{query}",
                "fingerprint": _fingerprint(labels),
            }
        ],
    }


def encode_payload(alert: Alert, *, event_id: str, receiver: str, external_url: str = "") -> bytes:
    """:func:`payload` as the JSON body of a POST."""
    return orjson.dumps(
        payload(alert, event_id=event_id, receiver=receiver, external_url=external_url)
    )


def _labels(alert: Alert) -> dict[str, str]:
    labels = {
        "alertname": alertname(alert.kind),
        "stream": alert.stream,
        "severity": alert.severity,
        "kind": alert.kind,
    }
    if alert.feature is not None:
        labels["feature"] = alert.feature
    if alert.model is not None:
        labels["model"] = alert.model
    return labels


def _annotations(alert: Alert, event_id: str) -> dict[str, str]:
    where = alert.stream if alert.feature is None else f"{alert.stream} (feature {alert.feature})"
    summary = f"{alert.kind.replace('_', ' ')} on {where}: {alert.statistic} = {alert.value:g}"
    if alert.threshold is not None:
        summary += f" (threshold {alert.threshold:g})"
    details = [alert.message] if alert.message else []
    if alert.model is not None:
        version = "" if alert.version is None else f" version {alert.version}"
        details.append(f"model {alert.model}{version}")
    if alert.window is not None:
        details.append(f"over the last {alert.window} events")
    if alert.at_event is not None:
        details.append(f"found at event {alert.at_event}")
    details.append(f"meander event {event_id}")
    return {"summary": summary, "description": "; ".join(details)}


def _fingerprint(labels: dict[str, str]) -> str:
    # Alertmanager's fingerprint identifies the label set: the same alert gets the same one.
    canonical = "\xff".join(f"{name}\xfe{labels[name]}" for name in sorted(labels))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
