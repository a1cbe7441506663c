"""What every component is given: the settings and the open bus and store.

One :class:`Runtime` per process; components share it and never close it themselves.

>>> from meander.config import Settings
>>> with Runtime.open(Settings()) as runtime:
...     runtime.bus.partitions("meander.alerts")
1
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from meander import topics
from meander.bus import Bus, connect_bus
from meander.closing import Closing
from meander.config import Settings
from meander.store import open_store

__all__ = ["Runtime"]


@dataclass
class Runtime(Closing):
    """The settings, the bus and the store of one process."""

    settings: Settings
    bus: Bus
    store: redis.Redis[bytes]

    @classmethod
    def open(cls, settings: Settings, *, create_topics: bool = True) -> Runtime:
        """Connect to the configured backends and (by default) create the topics they need."""
        bus = connect_bus(settings)
        try:
            store = open_store(settings)
            if create_topics:
                bus.create_topics(topics.layout(settings.streams))
        except BaseException:
            bus.close()
            raise
        return cls(settings, bus, store)

    def close(self) -> None:
        self.bus.close()
        self.store.close()
