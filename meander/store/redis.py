"""The Redis store: a redis-py client with bounded timeouts, checked before it is handed out."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from meander import keys
from meander.exceptions import StoreUnavailable

__all__ = ["redis_store", "writable"]

# Retried: a connection refused or reset fails at once, and a new one may be taken. Not a
# timeout (redis.TimeoutError): the server did not answer in time and would be waited on again.
_LOST_CONNECTION = (redis.ConnectionError,)


def redis_store(url: str, *, timeout: float = 5.0) -> redis.Redis[bytes]:
    """A client for the Redis at ``url`` that answered a PING within ``timeout`` seconds.

    A lost connection (refused, reset) is retried a few times with backoff; a server that does
    not answer within ``timeout`` fails the call then, once: a paused or hung Redis keeps its
    connections open, and retrying each timed-out call (and the health check's PING within it)
    held a call 20 s and more, every caller with it. A server that is down raises
    StoreUnavailable here instead of hanging.
    """
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        retry=Retry(
            ExponentialBackoff(cap=1.0, base=0.05), retries=3, supported_errors=_LOST_CONNECTION
        ),
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise StoreUnavailable(
            f"Redis at {_without_password(url)} did not answer within {timeout:.0f}s ({error}); "
            f"start one (make infra-up) or point MEANDER_REDIS_URL at yours"
        ) from error
    return client


def writable(client: redis.Redis[bytes]) -> None:
    """Raise unless ``client``'s Redis takes a write: one at its ``maxmemory`` (noeviction), a
    read-only replica, or one whose background save failed still answers PING, and refuses
    every write that matters. The probe is a key that expires by itself."""
    try:
        client.set(keys.STORE_PROBE, b"1", px=10_000)
    except redis.ResponseError as error:
        raise StoreUnavailable(f"Redis answers but refuses writes: {error}") from error


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
