"""Headers read by position (as encode writes them) say what they say when read by name."""

from __future__ import annotations

import pytest

from meander.events import Feedback, encode
from meander.events.headers import attributes, structured
from meander.exceptions import ContractError

Headers = tuple[tuple[str, bytes], ...]


def written(subject: str | None = "fraud") -> Headers:
    return encode("t", Feedback(event_id="e", label=1), source="/s", subject=subject).headers


def by_name(headers: Headers) -> Headers:
    """The same headers in another order, which only reading by name accepts."""
    return tuple(reversed(headers))


@pytest.mark.parametrize("subject", ["fraud", "", None])
def test_both_readings_agree(subject: str | None) -> None:
    headers = written(subject)
    read = attributes(headers)
    assert read == attributes(by_name(headers))
    assert read[1:3] == ("/s", "io.meander.feedback.v1")
    assert read[4] == subject


@pytest.mark.parametrize(
    ("position", "value", "reason"),
    [
        (
            0,
            b"0.3",
            "not a CloudEvents 1.0 binary-mode message: ce_specversion is '0.3'; send the header "
            "ce_specversion: 1.0 with the other ce_* headers, or no ce_* header at all for plain "
            "JSON",
        ),
        (
            1,
            b"",
            "missing required CloudEvents header(s): ce_id; a binary-mode event needs "
            "ce_specversion, ce_id, ce_source and ce_type (or send plain JSON with no ce_* header "
            "at all)",
        ),
        (2, b"\xff", "header 'ce_source' is not UTF-8"),
        (
            3,
            b"",
            "missing required CloudEvents header(s): ce_type; a binary-mode event needs "
            "ce_specversion, ce_id, ce_source and ce_type (or send plain JSON with no ce_* header "
            "at all)",
        ),
        (4, b"yesterday", "ce_time 'yesterday' is not an RFC 3339 timestamp"),
        (
            5,
            b"text/csv",
            "content-type 'text/csv' is not application/json: meander reads JSON data; send "
            "application/json, or application/cloudevents+json with the whole event in the value",
        ),
        (6, b"\xfe", "header 'ce_subject' is not UTF-8"),
    ],
)
def test_a_bad_value_in_its_place_is_named_as_always(
    position: int, value: bytes, reason: str
) -> None:
    headers = list(written())
    headers[position] = (headers[position][0], value)
    for order in (tuple(headers), by_name(tuple(headers))):
        with pytest.raises(ContractError) as raised:
            attributes(order)
        assert str(raised.value) == reason


def test_no_ce_header_or_a_cloudevents_content_type_is_not_binary_mode() -> None:
    assert attributes(()) is None
    assert (
        attributes((("traceparent", b"00-1-2-01"), ("content-type", b"application/json"))) is None
    )
    structured_headers = (
        *written(),
        ("Content-Type", b"application/cloudevents+json; charset=utf-8"),
    )
    assert attributes(structured_headers) is None  # the content type wins over ce_* headers
    assert structured(structured_headers) and not structured(written())


def test_parameters_and_other_headers_are_read_by_name() -> None:
    plain = written()
    headers = list(plain)
    headers[5] = ("content-type", b"application/json; charset=utf-8")
    assert attributes(tuple(headers)) == attributes(plain)
    other_last = (*written(None), ("traceparent", b"00-1-2-01"))
    assert attributes(other_last)[4] is None


@pytest.mark.parametrize("again", ["ce_id", "CE_ID"])
def test_a_header_sent_twice_is_read_as_its_last(again: str) -> None:
    # Kafka keeps every header a producer adds, so a stage that adds ce_id rather than setting
    # it leaves two: the last one is the event's, as Kafka's own Headers.lastHeader reads it.
    plain = written()
    assert attributes((*plain, (again, b"e-again")))[0] == "e-again"
    assert attributes((*by_name(plain), (again, b"e-again")))[0] == "e-again"
    before = (plain[0], (again, b"e-again"), *plain[1:])
    assert attributes(before)[0] == plain[1][1].decode()
