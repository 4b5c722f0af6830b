"""TaskBatch: tasks collected first and handed to an executor in one step.

Prior art: kprotty's zap ``Batch`` (an intrusive list of tasks submitted with one
``push`` and one ``notify``), Rayon's ``inject`` of many jobs at once, tokio's
``push_batch`` into the inject queue.

Why batch
=========

Spawning one task from outside the pool costs a lock round trip on the global queue and a
wake-up decision. ``executor.spawn_batch(batch)`` pays for both once: the tasks are built
first (no shared state touched), then pushed with one ``GlobalQueue.push_batch`` (one
critical section, or one reservation on the lock-free queue) or, from inside a task,
straight into the worker's own queue, and ``min(len(batch), idle workers)`` workers are
woken together instead of one at a time.

A ``TaskBatch`` is only a container: a list of coroutines, ``zuki.Future`` objects and
callables, in order. Nothing is validated or started until ``spawn_batch``, which raises
``TypeError`` (spawning nothing) if an item is none of the three. ``spawn_batch`` accepts
any iterable too; a ``TaskBatch`` just makes building one explicit.

Thread-safety: a ``TaskBatch`` is a plain container, meant to be filled by one thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["TaskBatch"]


class TaskBatch:
    """An ordered collection of tasks (coroutines, ``zuki.Future``s, callables) to spawn
    together with ``executor.spawn_batch(batch)``."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: list[Any] = list(items)

    def add(self, task: Any) -> None:
        """Append one task."""
        self._items.append(task)

    def extend(self, tasks: Iterable[Any]) -> None:
        """Append every task of ``tasks``, in order."""
        self._items.extend(tasks)

    def clear(self) -> None:
        """Remove every task (coroutines in it are not closed: they were never started,
        and whoever made them still owns them)."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __repr__(self) -> str:
        return f"<TaskBatch of {len(self._items)} task(s)>"
