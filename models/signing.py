"""Signed model blobs: an HMAC-SHA256 over the pickled bytes, checked before they are unpickled.

Whoever can write to the store could otherwise plant a pickle that runs code in every predictor.
A blob is ``MARKER + MAC + data``; the MAC also covers an optional context (the registry passes
the stream and version), so a validly signed blob cannot be copied onto another version either.

>>> signer = Signer(b"a key of at least sixteen bytes")
>>> blob = signer.sign(b"model bytes", context=b"fraud:3")
>>> signer.verify(blob, context=b"fraud:3")
b'model bytes'
>>> signer.verify(blob, context=b"fraud:4")
Traceback (most recent call last):
...
meander.exceptions.ModelTampered: ...
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from meander.config.settings import MIN_SIGNING_KEY_BYTES
from meander.exceptions import ConfigError, ModelTampered

if TYPE_CHECKING:
    from meander.config import Settings

__all__ = ["MIN_KEY_BYTES", "Signer", "signer_for"]

MARKER = b"MSIG1"  # names the format, so a later scheme can be told apart from this one
MAC_BYTES = hashlib.sha256().digest_size
MIN_KEY_BYTES = MIN_SIGNING_KEY_BYTES  # the config check refuses a shorter key first

_process_key: bytes | None = None


class Signer:
    """Signs and verifies model blobs with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"the model signing key has {len(key)} bytes; use at least {MIN_KEY_BYTES} "
                f"random bytes, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        self._key = key

    def sign(self, data: bytes, *, context: bytes = b"") -> bytes:
        """``data`` prefixed by the format marker and its MAC."""
        return MARKER + self._mac(data, context) + data

    def verify(self, blob: bytes, *, context: bytes = b"") -> bytes:
        """The data inside ``blob`` if its MAC matches; ModelTampered otherwise."""
        header = len(MARKER) + MAC_BYTES
        if len(blob) < header or not blob.startswith(MARKER):
            raise ModelTampered(
                f"the model blob ({len(blob)} bytes) is not a signed meander model: it was "
                f"written by something else or truncated; register the model again"
            )
        mac, data = blob[len(MARKER) : header], blob[header:]
        if not hmac.compare_digest(mac, self._mac(data, context)):
            raise ModelTampered(
                "the model blob's signature does not match: it was altered, moved from another "
                "version, or signed with another key; check model_signing_key on every "
                "component, then register the model again"
            )
        return data

    def mac(self, data: bytes, *, context: bytes = b"") -> bytes:
        """The MAC of ``data`` in ``context``, for things other than blobs to carry."""
        return self._mac(data, context)

    def matches(self, mac: bytes, data: bytes, *, context: bytes = b"") -> bool:
        """Whether ``mac`` is the MAC of ``data`` in ``context`` (compared in constant time)."""
        return hmac.compare_digest(mac, self._mac(data, context))

    def _mac(self, data: bytes, context: bytes) -> bytes:
        mac = hmac.new(self._key, MARKER, hashlib.sha256)
        # The length prefix keeps (context, data) pairs from colliding when concatenated.
        mac.update(len(context).to_bytes(8, "big") + context)
        mac.update(data)
        return mac.digest()


def signer_for(settings: Settings) -> Signer:
    """The Signer every component of a deployment shares.

    The configured ``model_signing_key`` when set. Without one, the embedded store lives in this
    process only, so a random key made once per process serves every component in it; with Redis,
    other processes must verify what this one signs, so a key is required.

    >>> from meander.config import Settings
    >>> settings = Settings(model_signing_key="a shared secret of 32+ characters")
    >>> signer_for(settings).verify(signer_for(settings).sign(b"x"))
    b'x'
    """
    global _process_key
    if settings.model_signing_key is not None:
        return Signer(settings.model_signing_key.get_secret_value().encode())
    if settings.uses_redis:
        raise ConfigError(
            "model_signing_key is not set but the registry is in Redis: predictors, learners and "
            "trainers in other processes must verify each other's model blobs, and an unsigned "
            "pickle in a shared store would run any code it holds; set MEANDER_MODEL_SIGNING_KEY "
            "(or model_signing_key in the config file) to the same random secret on every "
            "component, e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    if _process_key is None:
        _process_key = secrets.token_bytes(32)
    return Signer(_process_key)
