"""Events the service scored itself, marked so that predictors pass them by: those, and no other.

``POST /v1/streams/{s}/predict`` answers with the champion's prediction and publishes it with
the event. Predictors must not score that event again, but a client may write any source or
header it likes: so the service's event record carries a :data:`HEADER` whose value is an
HMAC-SHA256 of the record's value, keyed with the deployment's signing key (the one that signs
model blobs) in the context of the stream and the event id. Without the key it cannot be made,
and copied onto another event it does not match; an event whose mark does not match is scored
like any other.

>>> from meander.bus import Message
>>> from meander.models.signing import Signer
>>> signer = Signer(b"a key of at least sixteen bytes")
>>> header = mark(signer, "fraud", "e1", b'{"features": {}}')
>>> read = Message("fraud.events", 0, 0, b"e1", b'{"features": {}}', (header,), 0)
>>> is_marked(signer, "fraud", "e1", read), is_marked(signer, "fraud", "e2", read)
(True, False)
"""

from __future__ import annotations

from meander.bus import Message
from meander.models.signing import Signer

__all__ = ["HEADER", "is_marked", "mark"]

HEADER = "meander-served"


def mark(signer: Signer, stream: str, event_id: str, value: bytes) -> tuple[str, bytes]:
    """The header that marks ``value``, the event ``event_id`` of ``stream``, as served."""
    return HEADER, signer.mac(value, context=_context(stream, event_id)).hex().encode()


def is_marked(signer: Signer, stream: str, event_id: str, message: Message) -> bool:
    """Whether ``message`` carries a mark that matches its value and ``event_id``."""
    if message.value is None:
        return False
    for name, given in message.headers:
        if name == HEADER and given is not None:
            try:
                mac = bytes.fromhex(given.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return False
            return signer.matches(mac, message.value, context=_context(stream, event_id))
    return False


def _context(stream: str, event_id: str) -> bytes:
    return f"served:{stream}:{event_id}".encode("utf-8", "surrogatepass")
