"""Errors of the runtime: one flat module, as in trio's ``_core/_exceptions.py``.

Every executor failure derives from :class:`ExecutorError`, so ``except ExecutorError``
catches any misuse of an executor. Each subclass also derives from the standard exception
that code written for ``concurrent.futures`` already catches for the same situation:

* :class:`ExecutorShutdownError` is a ``RuntimeError``, which is what
  ``ThreadPoolExecutor.submit`` raises after shutdown, with the same message;
* :class:`ExecutorConfigError` is a ``ValueError``, which is what ``ThreadPoolExecutor``
  raises for ``max_workers <= 0``;
* :class:`ThreadSpawnError` is raised only when an executor cannot start a single
  thread; a pool that started some of its threads keeps running on them and says so
  once with a :class:`ThreadStartWarning`.

Cancellation
============

:class:`Cancelled` is what a cancelled task's ``JoinHandle`` raises from ``result()`` and
``await``, and what the runtime throws into a suspended coroutine it cancels (on
``JoinHandle.cancel()`` or ``shutdown(cancel_futures=True)``).

It derives from ``concurrent.futures.CancelledError``, and therefore from ``Exception``,
not from ``BaseException`` as ``asyncio.CancelledError`` (3.8+) and ``trio.Cancelled``
do. That is a deliberate trade: a ``JoinHandle`` is a ``concurrent.futures.Future``, and
code written against that contract catches ``concurrent.futures.CancelledError`` around
``result()``; one exception type serves both spellings. The cost is the old asyncio
hazard: a coroutine that wraps an ``await`` in ``except Exception:`` also catches its own
cancellation. A coroutine that swallows :class:`Cancelled` simply goes on running; the
runtime never re-throws on its own, except that ``shutdown(cancel_futures=True)`` throws
again at every later step of a task it is cancelling.
"""

from __future__ import annotations

import concurrent.futures

__all__ = [
    "Cancelled",
    "ExecutorConfigError",
    "ExecutorError",
    "ExecutorShutdownError",
    "ThreadSpawnError",
    "ThreadStartWarning",
]

SHUTDOWN_MESSAGE = "cannot schedule new futures after shutdown"


class ExecutorError(Exception):
    """Base class of every error an executor raises for misuse or failure."""


class ExecutorShutdownError(ExecutorError, RuntimeError):
    """``spawn``/``submit``/``spawn_batch``/``map`` after ``shutdown()`` was called.

    The message is the one ``ThreadPoolExecutor`` uses: "cannot schedule new futures
    after shutdown".
    """


class ExecutorConfigError(ExecutorError, ValueError):
    """An :class:`~zuki.ExecutorConfig` field has an invalid value; the message names it."""


class ThreadSpawnError(ExecutorError):
    """The executor could not start any worker thread (raised at construction)."""


class ThreadStartWarning(RuntimeWarning):
    """A worker thread could not be started; the pool goes on with the threads it has.

    Issued at most once per executor; the failures are also counted in
    ``metrics().failed_thread_starts``.
    """


class Cancelled(concurrent.futures.CancelledError):
    """The task was cancelled (see the module docstring for why this is an ``Exception``)."""
