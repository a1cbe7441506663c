"""The label join keeps events until their label, within an event-time TTL and a size bound."""

from __future__ import annotations

import pickle

from meander.consumers.learner.join import LabelJoin

SECOND = 1_000


def join_with(*stamps: int, ttl: float = 60, max_pending: int = 100) -> LabelJoin:
    join = LabelJoin(ttl_seconds=ttl, max_pending=max_pending)
    for i, stamp in enumerate(stamps):
        join.add_event(f"e{i}", {"i": i}, timestamp_ms=stamp, partition=i % 2, offset=i)
    return join


def test_a_label_takes_its_event_with_where_it_was_read() -> None:
    join = join_with(0, SECOND)

    entry = join.take("e1", label=True)

    assert entry is not None
    assert (entry.features, entry.timestamp_ms, entry.partition, entry.offset) == (
        {"i": 1},
        SECOND,
        1,
        1,
    )
    assert join.take("e1", label=True) is None  # taken once only
    assert len(join) == 1


def test_events_older_than_the_ttl_in_event_time_expire_unlabelled() -> None:
    # Wall-clock time plays no part: only the newest event's timestamp moves the horizon.
    join = join_with(0, 30 * SECOND, 60 * SECOND)
    assert (len(join), join.expired) == (3, 0)  # exactly ttl old: still waiting

    join.add_event("late", {}, timestamp_ms=61 * SECOND, partition=0, offset=9)

    assert join.expired == 1
    assert join.take("e0", label=True) is None
    assert join.take("e1", label=True) is not None


def test_beyond_max_pending_the_oldest_are_evicted_and_counted_as_expired() -> None:
    join = join_with(*range(5), max_pending=3)

    assert (len(join), join.expired) == (3, 2)
    assert [join.take(f"e{i}") is not None for i in range(5)] == [False, False, True, True, True]


def test_a_redelivered_event_keeps_the_first_copy() -> None:
    join = join_with(0)

    join.add_event("e0", {"i": "again"}, timestamp_ms=5, partition=1, offset=42)

    entry = join.take("e0")
    assert entry is not None
    assert (entry.features, entry.offset) == ({"i": 0}, 0)


def test_predictions_attach_to_their_pending_event_once_per_version_and_role() -> None:
    join = join_with(0)

    assert join.add_prediction("e0", version=1, role="champion", prediction="a") is None
    assert join.add_prediction("e0", version=2, role="challenger", prediction="b") is None
    join.add_prediction("e0", version=1, role="champion", prediction="redelivered")

    entry = join.take("e0", label="a")
    assert entry is not None
    assert entry.served == {(1, "champion"): "a", (2, "challenger"): "b"}


def test_a_prediction_after_its_label_gets_the_label_back() -> None:
    join = join_with(0)
    join.take("e0", label=False)

    assert join.add_prediction("e0", version=1, role="champion", prediction=True) is False
    assert join.add_prediction("unknown", version=1, role="champion", prediction=True) is None


def test_a_label_is_not_kept_for_late_predictions_when_some_were_served() -> None:
    join = join_with(0)
    join.add_prediction("e0", version=1, role="champion", prediction=True)
    join.take("e0", label=True)

    assert join.add_prediction("e0", version=1, role="champion", prediction=True) is None


def test_labels_kept_for_late_predictions_expire_with_the_ttl() -> None:
    join = join_with(0, ttl=10)
    join.take("e0", label=True)
    join.add_event("e1", {}, timestamp_ms=20 * SECOND, partition=0, offset=1)
    join.take("e1", label=False)

    assert join.add_prediction("e0", version=1, role="champion", prediction=True) is None
    assert join.add_prediction("e1", version=1, role="champion", prediction=True) is False
    assert join.expired == 0  # both were labelled: nothing was lost


def test_labels_kept_for_late_predictions_are_bounded_by_max_pending() -> None:
    join = join_with(*range(4), max_pending=2)
    for i in (2, 3):
        join.take(f"e{i}", label=i)
    join.add_event("e4", {}, timestamp_ms=4, partition=0, offset=4)
    join.add_event("e5", {}, timestamp_ms=5, partition=0, offset=5)
    join.take("e4", label=4)

    assert join.add_prediction("e2", version=1, role="champion", prediction=0) is None
    assert join.add_prediction("e4", version=1, role="champion", prediction=0) == 4


def test_a_pickled_join_comes_back_whole_and_in_order() -> None:
    join = join_with(0, SECOND, 2 * SECOND, 3 * SECOND)
    join.add_event("odd", {"colour": "red", "size": 2.5}, timestamp_ms=0, partition=1, offset=9)
    join.add_prediction("e1", version=3, role="champion", prediction=(True, {"True": 0.9}))
    join.add_prediction("e1", version=4, role="challenger", prediction=(False, {"True": 0.2}))
    join.take("e2", label=True)

    copy = pickle.loads(pickle.dumps(join, protocol=pickle.HIGHEST_PROTOCOL))

    assert list(copy.pending) == ["e0", "e1", "e3", "odd"]
    assert copy.pending == join.pending
    assert copy.pending["e1"].served == {
        (3, "champion"): (True, {"True": 0.9}),
        (4, "challenger"): (False, {"True": 0.2}),
    }
    assert (copy.ttl_ms, copy.max_pending, copy.newest_ms, copy.expired, copy.labelled) == (
        join.ttl_ms,
        join.max_pending,
        join.newest_ms,
        join.expired,
        join.labelled,
    )
    copy.add_event("e9", {"i": 9}, timestamp_ms=4 * SECOND, partition=0, offset=4)
    assert copy.take("e0") is not None and len(copy) == 4


def test_a_join_pickled_one_object_per_event_still_loads() -> None:
    join = join_with(0, SECOND)
    old = LabelJoin.__new__(LabelJoin)
    old.__setstate__(dict(vars(join)))
    assert old.pending == join.pending and old.newest_ms == join.newest_ms
