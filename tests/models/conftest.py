"""Fixtures of the models area: stores of each backend, registries on them, seeded samples."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from meander.models.registry import Registry
from meander.models.signing import Signer

KEY = b"test signing key, 32 bytes long!"

Sample = tuple[dict[str, float], Any]


@pytest.fixture
def stream(store: redis.Redis[bytes]) -> Iterator[str]:
    """A stream name no other test uses; its registry keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(store.scan_iter(match=f"meander:registry:{name}:*"))
    if keys:
        store.delete(*keys)


@pytest.fixture
def signer() -> Signer:
    return Signer(KEY)


@pytest.fixture
def registry(store: redis.Redis[bytes], stream: str, signer: Signer) -> Registry:
    return Registry(store, stream, signer)


def samples(task: str, n: int, seed: int = 42) -> list[Sample]:
    """``n`` seeded events of ``task`` whose target depends on the features, so models can learn."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for _ in range(n):
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1), "c": rng.gauss(0, 1)}
        if task == "binary":
            y: Any = x["a"] + 0.5 * x["b"] > 0
        elif task == "multiclass":
            y = "low" if x["a"] < -0.3 else "mid" if x["a"] < 0.3 else "high"
        else:
            y = 3.0 * x["a"] - 2.0 * x["b"] + 0.1 * x["c"]
        out.append((x, y))
    return out


@pytest.fixture
def make_samples() -> Callable[..., list[Sample]]:
    """The ``samples`` factory, for tests that build streams of several tasks."""
    return samples
