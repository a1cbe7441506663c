"""The long-running stream processors, one per concern, each runnable as ``meander run NAME``.

:data:`COMPONENTS` names them all, as DESIGN.md and docker-compose.yml do; :data:`AVAILABLE`
holds those this build ships (all of them), and :mod:`meander.consumers.assembly` builds them.
"""

from __future__ import annotations

__all__ = ["AVAILABLE", "COMPONENTS"]

COMPONENTS = ("predictor", "learner", "monitor", "trainer", "notifier", "producer")

# Every component can run alone or beside the others; meander.consumers.assembly builds them.
AVAILABLE = frozenset(COMPONENTS)
