"""Independent, reproducible seeds derived from one user seed.

Each random choice a producer makes (a concept's samples, the gradual mix, label delays, label
loss) draws from its own generator, so changing one knob does not reshuffle the others.

>>> derive_seed(42, "loss") == derive_seed(42, "loss") != derive_seed(42, "delay")
True
"""

from __future__ import annotations

import hashlib

__all__ = ["derive_seed"]


def derive_seed(seed: int, *parts: object) -> int:
    """A 32-bit seed for the purpose named by ``parts``, the same in every process."""
    # Python's hash() of a str changes between processes; a digest does not.
    text = "/".join(map(str, (seed, *parts))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big")
