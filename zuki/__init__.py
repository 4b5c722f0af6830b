"""zuki: a work-stealing async runtime for free-threaded CPython."""

from zuki._version import __version__
from zuki.runtime import net as net
from zuki.runtime.blocks import (
    AtomicInt,
    Backoff,
    GroupTask,
    Stream,
    TaskGroup,
    parallel_map,
    stream,
)
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
from zuki.runtime.sync import (
    Barrier,
    Channel,
    ChannelClosed,
    ChannelEmpty,
    ChannelFull,
    Event,
    Mutex,
    Oneshot,
    Semaphore,
)
from zuki.runtime.task import JoinHandle
from zuki.runtime.task_batch import TaskBatch
from zuki.runtime.timers import sleep, sleep_until, timeout, timeout_at
from zuki.runtime.waker import Waker
from zuki.runtime.work_stealing_executor import WorkStealingExecutor

__all__ = [
    "AtomicInt",
    "Backoff",
    "Barrier",
    "Cancelled",
    "Channel",
    "ChannelClosed",
    "ChannelEmpty",
    "ChannelFull",
    "Context",
    "Event",
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "ExecutorShutdownError",
    "Future",
    "GroupTask",
    "JoinHandle",
    "Mutex",
    "Oneshot",
    "PENDING",
    "Poll",
    "Priority",
    "Ready",
    "Semaphore",
    "SingleThreadedExecutor",
    "Stream",
    "TaskBatch",
    "TaskGroup",
    "Waker",
    "WorkStealingExecutor",
    "__version__",
    "current_executor",
    "join",
    "make_executor",
    "parallel_map",
    "run",
    "sleep",
    "sleep_until",
    "spawn",
    "stream",
    "timeout",
    "timeout_at",
    "yield_now",
]
