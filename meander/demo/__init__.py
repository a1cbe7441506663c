"""``meander demo``: the whole closed loop on a drifting synthetic stream, on the embedded
backends or on Kafka and Redis, narrated as it happens (:mod:`meander.demo.run`)."""

from meander.demo.run import AGRAWAL, run_demo

__all__ = ["AGRAWAL", "run_demo"]
