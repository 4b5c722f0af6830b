"""A loom-style deterministic interleaving checker for zuki's lock-free structures.

``checker`` is the engine (one simulated thread at a time, exhaustive exploration under a
preemption bound, then seeded random schedules); ``shim`` is the instrumented atomics
shim, deque, lock and futex it swaps into zuki. ``tests/test_interleavings.py`` holds
the models.
"""

from .checker import InterleavingFailure, Model, Report, RunResult, current, explore, note, replay
from .shim import instrumented

__all__ = [
    "InterleavingFailure",
    "Model",
    "Report",
    "RunResult",
    "current",
    "explore",
    "instrumented",
    "note",
    "replay",
]
