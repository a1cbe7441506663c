"""What a webhook is sent: the notice, its body in each format, the signature against replay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest

from meander.bus import Message
from meander.config import NotifierSettings
from meander.consumers.notifier.deliveries import Webhooks
from meander.consumers.notifier.subscriptions import Filters, Subscription
from meander.consumers.notifier.webhooks import CONTENT_TYPE, Notice, Webhook, sign, verify
from meander.events import Alert, ModelEvent, Payload, decode, encode

NOW = 1_700_000_000


def notice(payload: Payload) -> Notice:
    topic = "meander.alerts" if isinstance(payload, Alert) else "meander.models"
    record = encode(topic, payload, source="/test", subject="fraud")
    message = Message(topic, 0, 7, record.key, record.value, record.headers, 0)
    return Notice.of(decode(message))


def drift(severity: str = "warning") -> Alert:
    return Alert.model_validate(
        {
            "kind": "data_drift",
            "stream": "fraud",
            "severity": severity,
            "statistic": "psi",
            "value": 0.4,
            "feature": "amount",
        }
    )


def subscription(**fields: object) -> Subscription:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    values: dict[str, object] = {
        "id": "sub_1",
        "url": "https://hooks.example/in",
        "filters": Filters(streams=["fraud"], kinds=["data_drift"], min_severity="warning"),
        "format": "cloudevents",
        "description": "",
        "created_at": moment,
        "updated_at": moment,
    }
    return Subscription.model_validate(values | fields)


def test_a_signature_is_valid_for_its_body_timestamp_and_secret_only() -> None:
    signature = sign(b"s3cret", b'{"a":1}', NOW)
    assert verify(b"s3cret", b'{"a":1}', str(NOW), signature, now=NOW + 10)
    assert not verify(b"s3cret", b'{"a":2}', str(NOW), signature, now=NOW)  # body changed
    assert not verify(b"other", b'{"a":1}', str(NOW), signature, now=NOW)  # wrong secret
    assert not verify(b"s3cret", b'{"a":1}', str(NOW + 1), signature, now=NOW)  # re-stamped
    assert not verify(b"s3cret", b'{"a":1}', "17e8", signature, now=NOW)
    assert not verify(b"s3cret", b'{"a":1}', str(NOW), "sha256=\u00e9", now=NOW)
    assert sign(b"s3cret", b'{"a":1}', NOW + 1) != signature


@pytest.mark.parametrize(("late", "valid"), [(-300, True), (299, True), (301, False)])
def test_a_timestamp_too_far_from_the_clock_is_a_replay(late: int, valid: bool) -> None:
    signature = sign(b"k", b"{}", NOW)
    assert verify(b"k", b"{}", str(NOW), signature, now=NOW + late) is valid


def test_the_request_is_signed_over_timestamp_and_body() -> None:
    hook = Webhook("https://bob:pw@hooks.example/in?x=1", secret="s3cret")
    sent = notice(drift())

    request = hook.request(sent, now=NOW + 0.7)

    headers = {name.lower(): value for name, value in request.header_items()}
    assert (request.full_url, request.get_method()) == ("https://hooks.example/in?x=1", "POST")
    assert request.data == sent.body
    assert headers["content-type"] == CONTENT_TYPE
    assert headers["x-meander-event-id"] == sent.event_id
    assert headers["x-meander-timestamp"] == str(NOW)
    assert headers["x-meander-signature"] == sign(b"s3cret", sent.body, NOW)
    assert headers["authorization"] == "Basic Ym9iOnB3"


def test_without_a_secret_a_request_carries_no_signature() -> None:
    request = Webhook("https://hooks.example/in").request(notice(drift()), now=NOW)
    assert request.get_header("X-meander-signature") is None
    assert request.get_header("X-meander-timestamp") == str(NOW)


def test_an_alertmanager_webhook_gets_version_4_signed_the_same_way() -> None:
    hook = Webhook.from_subscription(subscription(format="alertmanager"), "s3cret", checked=True)
    sent = notice(drift())

    request = hook.request(sent, now=NOW)

    body = request.data
    assert isinstance(body, bytes)
    payload = orjson.loads(body)
    assert (payload["version"], payload["receiver"]) == ("4", "sub_1")
    assert payload["alerts"][0]["labels"]["feature"] == "amount"
    assert request.get_header("Content-type") == "application/json"
    assert request.get_header("X-meander-signature") == sign(b"s3cret", body, NOW)


def test_an_alertmanager_webhook_takes_alerts_only() -> None:
    promoted = notice(ModelEvent(action="promoted", stream="fraud"))
    assert Webhook("https://hooks.example/in", format="alertmanager").accepts(notice(drift()))
    assert not Webhook("https://hooks.example/in", format="alertmanager").accepts(promoted)
    assert Webhook("https://hooks.example/in").accepts(promoted)


def test_a_subscription_becomes_a_webhook_with_its_filters() -> None:
    hook = Webhook.from_subscription(subscription(), "s3cret", checked=True)
    assert (hook.subscription, hook.secret, hook.checked) == ("sub_1", "s3cret", True)
    assert hook.accepts(notice(drift("critical")))
    assert not hook.accepts(notice(drift("info")))
    assert not hook.accepts(notice(ModelEvent(action="rolled_back", stream="fraud")))
    assert "s3cret" not in repr(hook)


def test_notices_of_alerts_and_model_events() -> None:
    alert = notice(drift())
    assert (alert.family, alert.kind, alert.stream, alert.severity) == (
        "alerts",
        "data_drift",
        "fraud",
        "warning",
    )
    assert alert.alert is not None and alert.alert.feature == "amount"
    rollback = notice(ModelEvent(action="rolled_back", stream="fraud"))
    assert (rollback.family, rollback.kind, rollback.severity, rollback.alert) == (
        "models",
        "rolled_back",
        "warning",
        None,
    )
    assert orjson.loads(rollback.body)["data"]["action"] == "rolled_back"


def test_a_target_that_now_resolves_privately_is_refused_at_delivery_without_retry() -> None:
    asked: list[str] = []

    def rebound(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return ["10.0.0.7"]  # the name pointed elsewhere when the subscription was made

    webhooks = Webhooks(NotifierSettings(retries=3), backoff=0.001, resolve=rebound)
    hook = Webhook.from_subscription(subscription(), "s3cret", checked=True)
    webhooks.subscribe([hook])
    sent = notice(drift())

    assert webhooks.submit(sent) == 1
    assert webhooks.wait_idle(30)

    (outcome,) = webhooks.take_outcomes()
    assert (outcome.attempts, outcome.http_status, asked) == (1, None, ["hooks.example"])
    assert outcome.error is not None and outcome.error.startswith(
        "target refused: the host hooks.example resolves to 10.0.0.7, a private address"
    )
    assert outcome.notice is sent and outcome.left is None
    assert outcome.reason == (
        f"webhook https://hooks.example/in failed after 1 attempt: {outcome.error}"
    )
    webhooks.close(1)
