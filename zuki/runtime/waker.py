"""Wakers: how a pending future tells the runtime "poll my task again".

Prior art: Rust's ``std::task::Waker`` (a data pointer plus a vtable with ``wake``,
``wake_by_ref``, ``clone``, ``drop``) and tokio's task wakers, whose data is the task
header itself; the seeds' ``WorkStealingWakerData`` (executor, task id, affinity hint).

Design
======

A :class:`Waker` holds one *waker data* object and calls its ``wake()``; the data object
decides what waking means. Both executors give their tasks a data object whose ``wake``
is the task's own state-machine transition (``task.py``): an idle task becomes scheduled
and is queued exactly once, a running task is marked notified and re-queued by its
runner, a scheduled or finished task ignores the wake. That transition takes the task's
lock, so a waker is safe to call from any thread, including threads zuki does not own,
any number of times, at any time, also after the task finished or the executor shut
down (the wake is then a no-op, or the task lands in a closed queue and is cancelled
with the rest at the final drain).

``wake()`` and ``wake_by_ref()``: in Rust ``wake`` consumes the waker and ``wake_by_ref``
does not. Python has no moves, and a waker that silently goes dead after one use is the
classic source of lost wake-ups (a future that stores ``cx.waker`` once and wakes it
twice). So here both wake the task and neither invalidates the waker; ``wake()`` keeps
its Rust meaning only as documentation ("I am done with this waker"). ``clone()``
returns an independent waker for the same task (cheap: one small object).

Where the woken task goes (:class:`WorkStealingWakerData`): a wake from a worker thread
of the same executor puts the task in that worker's LIFO slot (message-passing locality:
the woken task probably reads what the waker just wrote); a wake from anywhere else puts
it in the global queue and unparks one worker. ``affinity`` names the worker that last
ran the task; it is a hint for metrics and debugging, never a promise.

Thread-safety: every method of every class here may be called from any thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from zuki.runtime.task import PollableTask

__all__ = ["TaskWakerData", "Waker", "WakerData", "WorkStealingWakerData"]


class WakerData(Protocol):
    """What a :class:`Waker` wraps: anything with a thread-safe ``wake()``."""

    def wake(self) -> None:
        """Schedule the task behind this data to be polled again."""


class Waker:
    """A handle that schedules one task to be polled again; see the module docstring."""

    __slots__ = ("_data",)

    def __init__(self, data: WakerData) -> None:
        self._data = data

    @property
    def data(self) -> WakerData:
        """The waker data this waker calls."""
        return self._data

    def wake(self) -> None:
        """Wake the task. The waker stays usable (see the module docstring)."""
        self._data.wake()

    def wake_by_ref(self) -> None:
        """Wake the task without giving up this waker."""
        self._data.wake()

    def clone(self) -> Waker:
        """A new waker for the same task."""
        return Waker(self._data)

    def will_wake(self, other: Waker) -> bool:
        """Whether ``other`` wakes the same task as this waker."""
        return self._data is other._data or self._data == other._data

    def __repr__(self) -> str:
        return f"Waker({self._data!r})"


class TaskWakerData:
    """Waker data for a task of any zuki executor: waking runs the task's transition.

    ``executor`` is the executor the task belongs to; ``task_id`` is unique among live
    tasks of the process.
    """

    __slots__ = ("_executor", "_task")

    def __init__(self, executor: Any, task: PollableTask[Any]) -> None:
        self._executor = executor
        self._task = task

    @property
    def executor(self) -> Any:
        """The executor that runs the task."""
        return self._executor

    @property
    def task(self) -> PollableTask[Any]:
        """The task this data wakes."""
        return self._task

    @property
    def task_id(self) -> int:
        """An id for the task, unique among the live tasks of the process."""
        return id(self._task)

    def wake(self) -> None:
        self._task.wake()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskWakerData) and other._task is self._task

    def __hash__(self) -> int:
        return id(self._task)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} task_id={self.task_id:#x}>"


class WorkStealingWakerData(TaskWakerData):
    """Waker data of a :class:`~zuki.WorkStealingExecutor` task.

    ``affinity`` is the index of the worker that last ran the task (``None`` before its
    first poll): a locality hint, read without synchronization.
    """

    __slots__ = ()

    @property
    def affinity(self) -> int | None:
        """The index of the worker that last polled the task, or ``None``."""
        return self._task.affinity
