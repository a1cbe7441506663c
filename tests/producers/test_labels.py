"""Delayed and lost labels: when each label falls due, in what order, and how many never do."""

from __future__ import annotations

import orjson
import pytest

from meander.bus import Record
from meander.producers import LabelDelay, Publisher, Sample, SourceError


def _samples(count: int, start: int = 0) -> list[Sample]:
    return [Sample(i, f"e{i}", {"x": float(i)}, i % 3) for i in range(start, start + count)]


def _ids(records: list[Record]) -> list[str]:
    return [orjson.loads(record.value)["event_id"] for record in records]


def test_a_zero_delay_releases_each_label_with_its_own_push() -> None:
    publisher = Publisher("s")
    events, feedback = publisher.push(_samples(3))
    assert [r.topic for r in events] == ["s.events"] * 3
    assert [r.topic for r in feedback] == ["s.feedback"] * 3
    assert _ids(feedback) == ["e0", "e1", "e2"]
    assert [orjson.loads(r.value)["label"] for r in feedback] == [0, 1, 2]


def test_a_fixed_delay_waits_for_that_many_later_events() -> None:
    publisher = Publisher("s", label_delay=3)
    released = []
    for sample in _samples(6):
        events, feedback = publisher.push([sample])
        assert len(events) == 1
        released.append(_ids(feedback))
    # e0 is due once three more events (e1, e2, e3) have been pushed.
    assert released == [[], [], [], ["e0"], ["e1"], ["e2"]]
    assert _ids(publisher.flush()) == ["e3", "e4", "e5"]
    assert publisher.pending == 0 and publisher.published == 6


def test_labels_due_inside_a_chunk_come_after_its_events_in_event_order() -> None:
    publisher = Publisher("s", label_delay=2)
    events, feedback = publisher.push(_samples(5))
    assert len(events) == 5 and _ids(feedback) == ["e0", "e1", "e2"]


def test_random_delays_stay_in_bounds_and_labels_come_out_by_due_time() -> None:
    publisher = Publisher("s", label_delay=2, label_delay_max=9, seed=3)
    due_at: dict[str, int] = {}
    for sample in _samples(500):
        _, feedback = publisher.push([sample])
        for event_id in _ids(feedback):
            due_at[event_id] = publisher.pushed
    delays = [due_at[f"e{i}"] - (i + 1) for i in range(490)]
    assert min(delays) == 2 and max(delays) == 9
    assert len(set(delays)) == 8  # every delay in [2, 9] occurs
    # Labels can overtake each other, but never come out before they are due.
    order = list(due_at)
    assert order != sorted(order, key=lambda e: int(e[1:]))


def test_the_same_seed_draws_the_same_delays_and_losses() -> None:
    def draws(seed: int) -> list[int | None]:
        delays = LabelDelay(delay=0, delay_max=50, loss=0.2, seed=seed)
        return [delays.draw() for _ in range(200)]

    assert draws(1) == draws(1) != draws(2)


def test_changing_the_loss_keeps_the_delay_of_every_surviving_label() -> None:
    kept = LabelDelay(delay=1, delay_max=20, loss=0.0, seed=5)
    lossy = LabelDelay(delay=1, delay_max=20, loss=0.3, seed=5)
    pairs = [(kept.draw(), lossy.draw()) for _ in range(300)]
    assert all(b is None or a == b for a, b in pairs)


def test_label_loss_rate_is_near_the_setting_and_exact_for_a_seed() -> None:
    publisher = Publisher("s", label_delay=5, label_loss=0.1, seed=42)
    publisher.push(_samples(20_000))
    publisher.flush()
    assert publisher.lost == 2_009
    assert publisher.lost + publisher.published == 20_000
    assert abs(publisher.lost / 20_000 - 0.1) < 0.01


def test_samples_without_a_label_publish_an_event_and_no_feedback() -> None:
    publisher = Publisher("s")
    events, feedback = publisher.push([Sample(0, "e0", {"x": 1.0}, None)])
    assert len(events) == 1 and feedback == [] and publisher.unlabelled == 1


def test_events_carry_the_sample_id_features_and_time() -> None:
    from datetime import UTC, datetime

    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    sample = Sample(0, "loans-00000000", {"amount": None, "country": "FR"}, 1, time=moment)
    (event,), _ = Publisher("loans").push([sample])
    body = orjson.loads(event.value)
    assert event.key == b"loans-00000000" and dict(event.headers)["ce_id"] == b"loans-00000000"
    assert body["features"] == {"amount": None, "country": "FR"}
    assert body["time"].startswith("2024-05-01T12:00:00")
    assert event.timestamp_ms == int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    "arguments",
    [{"label_delay": -1}, {"label_delay": 5, "label_delay_max": 4}, {"label_loss": 1.0}],
)
def test_impossible_delays_and_losses_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(SourceError, match="label"):
        Publisher("s", **arguments)  # type: ignore[arg-type]
