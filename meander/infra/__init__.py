"""Real Kafka (KRaft) and Redis servers on loopback, for machines without Docker, and Kafka's own
console tools.

``python -m meander.infra up|down|status`` serves ``make infra-up``/``make infra-down``; the
classes serve pytest session fixtures.
"""

from meander.infra.kafka import LocalKafka
from meander.infra.kafka_tools import ConsoleTools
from meander.infra.process import InfraError
from meander.infra.redis import LocalRedis

__all__ = ["ConsoleTools", "InfraError", "LocalKafka", "LocalRedis"]
