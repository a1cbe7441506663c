"""Whether a Kafka broker answers at all: checked before a client is built, by every Kafka bus.

kafka-python's failed bootstrap leaves sockets open, and librdkafka retries for ever in the
background: a plain TCP connection within the bus's timeout says "no broker" clearly first.
"""

from __future__ import annotations

import socket

from meander.exceptions import BusUnavailable

__all__ = ["reachable", "unavailable"]


def reachable(bootstrap: str, timeout: float) -> bool:
    """Whether any bootstrap address accepts a TCP connection within ``timeout`` seconds."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except (OSError, ValueError):
            continue
        return True
    return False


def unavailable(bootstrap: str, seconds: float) -> BusUnavailable:
    """The error of a bus whose broker did not answer at ``bootstrap`` within ``seconds``."""
    return BusUnavailable(
        f"no Kafka broker answered at {bootstrap} within {seconds:.0f}s; start one "
        f"(make infra-up) or point MEANDER_KAFKA_BOOTSTRAP at yours"
    )
