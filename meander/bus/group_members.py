"""Who the broker lists as a consumer group's members, asked through kafka-python's admin client.

Asked for a confluent-kafka member that may have stopped rejoining its group
(:mod:`meander.bus.confluent_stall`), and not through librdkafka's own admin client: its
``describe_consumer_groups``, asked while the broker restarted, aborted the whole process
(``rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt > 0' failed``, librdkafka
2.16.0; a notifier twice, and a probe asking every 0.3 s through restarts once in 3).
kafka-python's client is Python: a failed request raises, and is answered as "no answer".
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from meander.bus.confluent_stall import Membership
from meander.bus.reach import reachable

__all__ = ["GroupMembers"]

log = logging.getLogger(__name__)
_SETTLED = frozenset({"Stable", "Empty", "Dead"})  # Dead: no member and no offsets


class GroupMembers:
    """``members(group)``: the :class:`Membership` of ``group``, or None when the broker does
    not answer within ``timeout`` seconds."""

    def __init__(self, bootstrap: str, timeout: float, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._client_id = client_id
        self._lock = threading.Lock()

    def __call__(self, group: str) -> Membership | None:
        if not reachable(self._bootstrap, self._timeout):
            return None
        with self._lock:
            # A client per question (asked at most every session timeout, by a member with no
            # partitions): one kept would refresh its metadata, and warn, through every outage.
            admin: KafkaAdminClient | None = None
            try:
                admin = self._client()
                found = admin.describe_groups([group])[group]
            except (KafkaError, OSError) as error:
                log.warning("could not describe group %s: %s", group, error)
                return None
            finally:
                if admin is not None:
                    admin.close()
        members = {m["member_id"] for m in found["members"]}
        members |= {m["group_instance_id"] for m in found["members"] if m["group_instance_id"]}
        return Membership(found["group_state"] in _SETTLED, frozenset(members))

    def _client(self) -> KafkaAdminClient:
        timeout_ms = int(self._timeout * 1000)
        return KafkaAdminClient(
            bootstrap_servers=self._bootstrap.split(","),
            client_id=self._client_id,
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 5_000),
        )
