"""Model signing: blobs verify only with the same key and context, and keys come from settings."""

from __future__ import annotations

import pytest

from meander.config import Settings
from meander.exceptions import ConfigError, ModelTampered
from meander.models.signing import Signer, signer_for

KEY = b"test signing key, 32 bytes long!"


@pytest.fixture(autouse=True)
def _no_meander_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEANDER_MODEL_SIGNING_KEY", "MEANDER_REDIS_URL", "MEANDER_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)


def test_a_signed_blob_verifies_to_its_data() -> None:
    signer = Signer(KEY)
    data = bytes(range(256)) * 4
    blob = signer.sign(data, context=b"fraud:1")
    assert blob != data
    assert signer.verify(blob, context=b"fraud:1") == data


@pytest.mark.parametrize(
    "change",
    [
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # the data
        lambda blob: blob[:8] + bytes([blob[8] ^ 1]) + blob[9:],  # the MAC
        lambda blob: blob[:-1],  # truncated data
        lambda blob: blob[:20],  # shorter than a header
        lambda blob: b"X" + blob[1:],  # the format marker
    ],
)
def test_any_change_is_refused(change: object) -> None:
    signer = Signer(KEY)
    blob = signer.sign(b"model bytes" * 10)
    with pytest.raises(ModelTampered):
        signer.verify(change(blob))  # type: ignore[operator]


def test_the_context_and_the_key_are_bound() -> None:
    blob = Signer(KEY).sign(b"model", context=b"fraud:1")
    with pytest.raises(ModelTampered):
        Signer(KEY).verify(blob, context=b"fraud:2")
    with pytest.raises(ModelTampered):
        Signer(b"x" * 32).verify(blob, context=b"fraud:1")


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        Signer(b"secret")


def test_the_configured_key_is_used() -> None:
    settings = Settings(model_signing_key=KEY.decode(), redis_url="redis://localhost:6379/0")
    assert signer_for(settings).verify(Signer(KEY).sign(b"x")) == b"x"


def test_embedded_components_share_one_process_key() -> None:
    blob = signer_for(Settings()).sign(b"x")
    assert signer_for(Settings()).verify(blob) == b"x"
    with pytest.raises(ModelTampered):
        Signer(KEY).verify(blob)


def test_redis_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as refused:
        signer_for(Settings(redis_url="redis://localhost:6379/0"))
    message = str(refused.value)
    assert "model_signing_key" in message
    assert "MEANDER_MODEL_SIGNING_KEY" in message
    assert "other processes" in message
