"""The learner reads every prediction with or after the event it answers, on either client,
while events and their predictions keep coming.

A learner's step reads events and predictions up to their ends as of one request, so that the
events read include every event the predictions read answer. A client hands back what its
last fetch brought, which can run past the ends asked for: a prediction read past them may
answer an event published after the events' ends, which the events' read need not reach. The
learner found no event to join it to and dropped it; its label was then judged without what
the predictors served (the loop test's served count fell 33 and 100 short of 5,800 under load).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from meander import topics
from meander.bus import Record
from meander.config import Settings, StreamConfig
from meander.consumers.learner.learner_inputs import LearnerInputs
from meander.runtime import Runtime

pytestmark = pytest.mark.integration

SECONDS = 4.0  # of steps while the stream flows
BURST = 50  # events published together, then their predictions together, as a predictor does


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def runtime(
    request: pytest.FixtureRequest, real_settings: Callable[..., Settings], stream_name: str
) -> Iterator[Runtime]:
    stream = StreamConfig(name=stream_name, task="binary", features={"x": "numeric"})
    settings = real_settings(stream).model_copy(update={"kafka_client": request.param})
    with Runtime.open(settings) as opened:
        yield opened


def test_no_prediction_is_read_before_the_event_it_answers(
    runtime: Runtime, stream_name: str
) -> None:
    events, predictions = topics.events(stream_name), topics.predictions(stream_name)
    stop, published = threading.Event(), []

    def publish() -> None:
        while not stop.is_set():
            ids = [f"{len(published) + i}".encode() for i in range(BURST)]
            runtime.bus.publish([Record(events, i, key=i) for i in ids])
            runtime.bus.publish([Record(predictions, i, key=i) for i in ids])
            published.extend(ids)
            time.sleep(0.01)

    inputs = LearnerInputs(runtime, runtime.settings.stream(stream_name), {})
    publisher = threading.Thread(target=publish, daemon=True)
    read_events: set[bytes] = set()
    early: list[bytes] = []
    read_predictions = 0

    def step() -> None:
        nonlocal read_predictions
        answers, questions = inputs.caught_up()
        read_events.update(m.value or b"" for m in questions)
        early.extend(m.value or b"" for m in answers if m.value not in read_events)
        read_predictions += len(answers)

    try:
        publisher.start()
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            step()
        stop.set()
        publisher.join(10)
        while read_predictions < len(published):  # the rest, once the stream has stopped
            assert time.monotonic() < deadline + 30, "could not read the predictions to the end"
            step()
    finally:
        stop.set()
        publisher.join(10)
        inputs.close()

    assert read_predictions == len(published) > 0
    assert not early, f"{len(early)} of {len(published)} predictions read before their event"
