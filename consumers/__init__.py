"""The long-running stream processors, one per concern, each runnable as ``meander run NAME``.

:data:`COMPONENTS` names them all, as DESIGN.md and docker-compose.yml do; :data:`AVAILABLE`
maps those that this build ships to their entry points (``module:function``).
"""

from __future__ import annotations

__all__ = ["AVAILABLE", "COMPONENTS"]

COMPONENTS = ("predictor", "learner", "monitor", "trainer", "notifier", "producer")

# Each entry point takes the Settings and runs until stopped. The loop's components arrive
# with the closed-loop work; until then `meander run` says which are missing.
AVAILABLE: dict[str, str] = {}
