"""Reading a drift detector on a model's error stream: whether a change it found is for the
worse, and the level of error it keeps. River's detectors differ in what they keep (ADWIN a
window with a width, KSWIN its latest values, Page-Hinkley nothing); these functions read each
as far as it can be read.
"""

from __future__ import annotations

from typing import Any

from river.drift import ADWIN

__all__ = ["level", "warning_twin", "window", "worse"]


def worse(
    detector: Any, error: float, before: float | None = None, width: int | None = None
) -> bool:
    """Update ``detector``; True only for a change for the worse.

    A detector on the error stream also fires when the error falls, as a young model learns;
    that is no reason to retrain. ADWIN tells the two apart: at a change it drops the oldest
    part of its window, and the change is for the worse when the part it keeps has a higher
    mean error than the part it dropped. (Comparing the kept part with the whole window is not
    enough: the dropped part may hold the high errors of the model's own first steps.) KSWIN's
    latest values are compared with what it held before. Page-Hinkley keeps no window, so every
    change counts: give it ``mode="up"`` to watch for rises only."""
    # ``before`` and ``width``: the detector's level and window before this error, when the
    # caller read them already (as :func:`window` does).
    if before is None:
        before, width = window(detector)
    detector.update(error)
    if not detector.drift_detected:
        return False
    after = level(detector)
    if before is None or after is None:
        return True
    kept = getattr(detector, "width", None)
    if width is not None and kept is not None and width + 1 > kept:
        total = before * float(width) + error
        dropped = (total - after * float(kept)) / float(width + 1 - kept)
        return after > dropped
    return after > before


def window(detector: Any) -> tuple[float | None, int | None]:
    """The level of a detector (see :func:`level`) and its window's width, when it has one.

    Read once per label for each detector: ADWIN's ``estimation`` reads its width twice more."""
    if type(detector) is ADWIN:
        width = detector.width
        return (detector.total / width if width else 0.0), width
    return level(detector), getattr(detector, "width", None)


def level(detector: Any) -> float | None:
    """The mean of the errors a detector keeps, when it keeps any."""
    if hasattr(detector, "estimation"):
        return float(detector.estimation)
    window = getattr(detector, "window", None)
    return sum(window) / len(window) if window else None


def warning_twin(detector: Any) -> Any | None:
    """A more sensitive copy of a detector that has no warning zone of its own (ADWIN)."""
    if hasattr(detector, "warning_detected") or not hasattr(detector, "delta"):
        return None
    return detector.clone({"delta": min(0.2, detector.delta * 100)})
