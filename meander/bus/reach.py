"""Whether a Kafka broker answers at all: checked before a client is built, by every Kafka bus,
and by readiness checks.

kafka-python's failed bootstrap leaves sockets open, and librdkafka retries for ever in the
background: a request the broker must answer within the bus's timeout says "no broker" clearly
first. A TCP connection alone does not: a broker that is paused or hung (SIGSTOP, a long GC
pause) has its connections accepted by the kernel and answers nothing.
"""

from __future__ import annotations

import socket
import struct
import time

from meander.exceptions import BusUnavailable

__all__ = ["reachable", "unavailable"]


# ApiVersions v0 (API key 18), correlation id 1, client id "meander": the request every broker
# answers, whatever its version, before any other.
_CORRELATION = 1
_API_VERSIONS = struct.pack(">hhih", 18, 0, _CORRELATION, 7) + b"meander"
_REQUEST = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


def reachable(bootstrap: str, timeout: float) -> bool:
    """Whether any bootstrap address answers a Kafka request within ``timeout`` seconds."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            if _answers(host.strip("[]"), int(port), time.monotonic() + timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def _answers(host: str, port: int, deadline: float) -> bool:
    """Whether the broker at ``host:port`` answers ApiVersions before ``deadline``."""
    with socket.create_connection((host, port), timeout=_left(deadline)) as connection:
        connection.sendall(_REQUEST)
        reply = b""
        while len(reply) < 8:  # the size of the response, then its correlation id
            connection.settimeout(_left(deadline))
            received = connection.recv(8 - len(reply))
            if not received:
                return False
            reply += received
    return reply[4:] == struct.pack(">i", _CORRELATION)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the broker did not answer in time")
    return left


def unavailable(bootstrap: str, seconds: float) -> BusUnavailable:
    """The error of a bus whose broker did not answer at ``bootstrap`` within ``seconds``."""
    return BusUnavailable(
        f"no Kafka broker answered at {bootstrap} within {seconds:.0f}s; start one "
        f"(make infra-up) or point MEANDER_KAFKA_BOOTSTRAP at yours"
    )
