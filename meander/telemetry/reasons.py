"""The class of a dead letter's reason: a bounded label for what the reason says in full.

A reason is a sentence written for a person (it names the feature, the value, the limit); the
metric ``meander_deadletters_total`` counts it under one of :data:`~meander.telemetry.metrics.
REASONS` instead, read from how each writer of reasons opens its sentence:

- ``too_large``: the decoder's size check;
- ``undecodable``: nothing meander can read: not JSON, unreadable headers or key, broken
  binary-mode headers, or plain JSON on a topic that carries CloudEvents only;
- ``contract``: an event (a CloudEvent in either mode, or plain JSON) of an unknown type, on the
  wrong topic, or whose data does not fit its type;
- ``schema``: a feature event outside its stream's schema;
- ``wrong_label``: a label that cannot be learned: of the wrong type for the task, not one of
  its classes, or for no event waiting for one (``meander_feedback_unmatched_total`` counts
  the latter alone);
- ``time``: a record time or timestamp outside the accepted window (before 1970, or further
  ahead of the clock than ``max_clock_skew_seconds``);
- ``delivery_failed``: a webhook delivery that failed for good;
- ``other``: anything else, so a new writer shows up instead of vanishing.

>>> dead_letter_reason("value of 2000001 bytes exceeds the limit of 1000000")
'too_large'
>>> dead_letter_reason("feature 'amount' must be a number, got 'x' (str)")
'schema'
>>> dead_letter_reason("not JSON (unexpected character) and no ce_* headers: send ...")
'undecodable'
>>> dead_letter_reason('invalid io.meander.event.v1 data (plain JSON): foo: Extra inputs ...')
'contract'
>>> dead_letter_reason("the cat sat on the mat")
'other'
"""

from __future__ import annotations

__all__ = ["dead_letter_reason"]

# (how a reason opens, a phrase it must also hold or "", its class): the first match wins.
# Only openings are trusted: the rest of a reason may quote a sender's values.
_RULES: tuple[tuple[str, str, str], ...] = (
    ("value of ", "exceeds the limit of", "too_large"),
    ("the record's value is null", "", "undecodable"),
    ("the Kafka client cannot read", "", "undecodable"),
    ("cannot be decoded: ", "", "undecodable"),
    ("not a CloudEvents", "", "undecodable"),
    ("missing required CloudEvents header", "", "undecodable"),
    ("header ", "", "undecodable"),
    ("content-type ", "", "undecodable"),
    ("ce_time ", "", "undecodable"),
    ("not JSON (", "", "undecodable"),
    ("no ce_* headers: ", "", "undecodable"),
    ("the Kafka key is not UTF-8", "", "undecodable"),
    ("invalid ", " data: (value): not valid JSON", "undecodable"),
    ("invalid ", " data", "contract"),
    ("unknown ce_type", "", "contract"),
    ("unknown type", "", "contract"),
    ("structured-mode ", "", "contract"),
    ("a structured-mode ", "", "contract"),
    ("datacontenttype ", "", "contract"),
    ("a JSON ", "", "contract"),
    ("no features", "", "contract"),
    ('no "', "", "contract"),
    ("expected ", "", "contract"),
    ("a ", " does not belong on ", "contract"),
    ("unknown feature ", "", "schema"),
    ("feature ", "", "schema"),
    ("prediction ", "", "contract"),
    ("probabilities ", "", "contract"),
    ("retrain request ", "", "contract"),
    ("the learner cannot follow ", "", "contract"),
    ("time ", " ahead of the clock", "time"),
    ("time ", " before 1970", "time"),
    ("timestamp ", " ahead of the clock", "time"),
    ("timestamp ", " before 1970", "time"),
    ("label ", "", "wrong_label"),
    ("no event ", " is waiting for a label", "wrong_label"),
    ("webhook ", " failed after ", "delivery_failed"),
    ("not delivered: ", "", "delivery_failed"),
)


def dead_letter_reason(reason: str) -> str:
    """The class of ``reason``, one of ``meander.telemetry.metrics.REASONS``."""
    for opening, phrase, kind in _RULES:
        if reason.startswith(opening) and phrase in reason:
            return kind
    return "other"
