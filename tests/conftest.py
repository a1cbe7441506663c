"""Session fixtures for the real backends: one Kafka broker and one Redis server per test run.

They use the servers named by MEANDER_KAFKA_BOOTSTRAP / MEANDER_REDIS_URL when set, and
otherwise start their own on free loopback ports and stop them at the end. When a server cannot
be had, integration tests skip on a laptop but fail under CI=true: CI never passes by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from meander.infra.kafka import LocalKafka
from meander.infra.process import InfraError
from meander.infra.redis import LocalRedis

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is needed for integration tests and could not be started: {error}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker."""
    if bootstrap := os.environ.get("MEANDER_KAFKA_BOOTSTRAP"):
        yield bootstrap
        return
    broker = LocalKafka()
    try:
        broker.start(timeout=120)
    except InfraError as error:
        _unavailable("Apache Kafka", error)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis server."""
    if url := os.environ.get("MEANDER_REDIS_URL"):
        yield url
        return
    server = LocalRedis()
    try:
        server.start(timeout=30)
    except InfraError as error:
        _unavailable("Redis", error)
    try:
        yield server.url
    finally:
        server.stop()
