"""zuki: a work-stealing async runtime for free-threaded CPython."""

from zuki._version import __version__
from zuki.runtime.errors import Cancelled, ExecutorError, ExecutorShutdownError
from zuki.runtime.executor import (
    Executor,
    ExecutorConfig,
    current_executor,
    join,
    make_executor,
    run,
    spawn,
)
from zuki.runtime.future import PENDING, Context, Future, Poll, Ready, yield_now
from zuki.runtime.single_threaded_executor import Priority, SingleThreadedExecutor
from zuki.runtime.task import JoinHandle
from zuki.runtime.task_batch import TaskBatch
from zuki.runtime.waker import Waker
from zuki.runtime.work_stealing_executor import WorkStealingExecutor

__all__ = [
    "PENDING",
    "Cancelled",
    "Context",
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "ExecutorShutdownError",
    "Future",
    "JoinHandle",
    "Poll",
    "Priority",
    "Ready",
    "SingleThreadedExecutor",
    "TaskBatch",
    "Waker",
    "WorkStealingExecutor",
    "__version__",
    "current_executor",
    "join",
    "make_executor",
    "run",
    "spawn",
    "yield_now",
]
