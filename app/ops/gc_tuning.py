"""Garbage-collector settings for a serving process.

A request that waits on Redis keeps its objects alive across event-loop turns. With CPython's
default first-generation threshold (700 objects) a few dozen such requests in flight set off a
collection every ~9 requests, and each one promoted the in-flight objects towards the oldest
generation, whose full passes walked the whole startup heap (~75,000 objects): ~16% of a
worker's CPU in the session benchmark (docs/benchmarks.md). Freezing the startup heap keeps
it out of every pass; a higher threshold lets requests finish (and free their objects by
reference counting) before a collection is due.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> tuple[int, int, int]:
    """Call once the app is built; returns the thresholds to hand back to `restore`."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, before[1], before[2])
    return before


def restore(thresholds: tuple[int, int, int]) -> None:
    gc.unfreeze()
    gc.set_threshold(*thresholds)
