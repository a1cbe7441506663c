"""Alertmanager's webhook payload, version 4: the shape its receivers parse."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from meander.consumers.notifier.alertmanager import CONTENT_TYPE, alertname, encode_payload, payload
from meander.events import Alert

DETECTED = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)


def drift(**fields: object) -> Alert:
    values: dict[str, object] = {
        "kind": "concept_drift",
        "stream": "fraud",
        "severity": "critical",
        "statistic": "error_rate",
        "value": 0.42,
        "detected_at": DETECTED,
    }
    return Alert.model_validate(values | fields)


def test_the_payload_has_every_field_of_version_4() -> None:
    body = payload(drift(), event_id="e7", receiver="sub_1", external_url="https://meander.local")

    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }  # fmt: skip
    assert (body["version"], body["status"], body["truncatedAlerts"]) == ("4", "firing", 0)
    assert (body["receiver"], body["externalURL"]) == ("sub_1", "https://meander.local")
    assert body["groupLabels"] == {"alertname": "ConceptDrift", "stream": "fraud"}
    assert body["groupKey"] == '{}:{alertname="ConceptDrift", stream="fraud"}'
    (alert,) = body["alerts"]
    assert set(alert) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
    }  # fmt: skip
    assert alert["labels"] == {
        "alertname": "ConceptDrift",
        "stream": "fraud",
        "severity": "critical",
        "kind": "concept_drift",
    }
    assert alert["labels"] == body["commonLabels"]
    assert alert["annotations"] == body["commonAnnotations"]
    assert alert["startsAt"] == "2025-03-04T05:06:07.890000Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == (
        "https://meander.local/v1/alerts?stream=fraud&kind=concept_drift"
    )
    assert len(alert["fingerprint"]) == 16 and int(alert["fingerprint"], 16) >= 0


def test_feature_and_model_become_labels_when_present() -> None:
    body = payload(drift(feature="amount", model="fraud", version=3), event_id="e", receiver="r")
    labels = body["alerts"][0]["labels"]
    assert (labels["feature"], labels["model"]) == ("amount", "fraud")
    assert "version" not in labels  # a label per version would split one alert into many


def test_annotations_carry_the_measure_and_the_context() -> None:
    alert = drift(
        threshold=0.3, window=500, at_event="ev-9", model="fraud", version=3, message="errors up"
    )
    annotations = payload(alert, event_id="e7", receiver="r")["alerts"][0]["annotations"]
    assert annotations["summary"] == "concept drift on fraud: error_rate = 0.42 (threshold 0.3)"
    assert annotations["description"] == (
        "errors up; model fraud version 3; over the last 500 events; found at event ev-9; "
        "meander event e7"
    )


def test_the_fingerprint_follows_the_labels_only() -> None:
    def fingerprint(alert: Alert) -> str:
        return str(payload(alert, event_id="e", receiver="r")["alerts"][0]["fingerprint"])

    same = fingerprint(drift(value=0.1)), fingerprint(drift(value=0.9))
    assert same[0] == same[1]
    assert fingerprint(drift(stream="churn")) != same[0]
    assert fingerprint(drift(feature="amount")) != same[0]


def test_the_encoded_body_is_the_payload_as_json() -> None:
    alert = drift()
    assert orjson.loads(encode_payload(alert, event_id="e", receiver="r")) == payload(
        alert, event_id="e", receiver="r"
    )
    assert CONTENT_TYPE == "application/json"
    assert alertname("data_drift") == "DataDrift"
