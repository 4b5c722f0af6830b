"""The poll-based future protocol, and how coroutines sit on top of it.

Prior art
=========

Rust's ``std::future::Future`` (``poll(self: Pin<&mut Self>, cx: &mut Context) ->
Poll<T>``, with ``cx.waker()``), which the seeds' Future/Context/Waker design copies; and
asyncio's ``Task.__step``, which drives a coroutine by ``send``/``throw`` and reacts to
what it yields.

The protocol
============

A :class:`Future` is a value that may not be ready yet. The runtime asks with
``poll(cx)``: the future answers ``Poll.ready(value)`` (a :class:`Ready`) or
``Poll.PENDING`` (the :data:`PENDING` singleton), or raises, which fails the task. A
future that answers ``PENDING`` must have arranged for ``cx.waker.wake()`` to be called
once it can make progress (usually by storing ``cx.waker.clone()`` where the producer
finds it). A wake may come from any thread, at any time, even before ``poll`` returns;
the task state machine (``task.py``) turns early and duplicate wakes into at most one
re-poll. Polling a ready future again is not required to work.

Leaf futures (timers, sockets, channels, a gate a test opens from another thread) are
written against ``poll``. Everything else is written as ``async def``.

Coroutines on top of futures
============================

``Future.__await__`` yields the future itself to whatever drives the coroutine. The
driver (a coroutine task in ``task.py``, or :class:`CoroutineFuture` here) polls the
yielded future with the task's :class:`Context`; if it is ready the driver sends the
value straight back into the coroutine, if it is pending the task goes idle until its
waker fires, and then the driver polls the same future again. An exception raised by
``poll`` is thrown into the coroutine at the ``await``, so ``try``/``except`` around an
``await`` works as usual. This is asyncio's "yield the future to the task" trick, with
``poll`` in place of ``add_done_callback``.

``await zuki.yield_now()`` yields a private marker instead of a future: the driver puts
the task at the back of the run queue (tokio's ``yield_now``) and answers nothing.

Anything else a coroutine yields (an asyncio future, a bare ``yield`` in a
``@types.coroutine``) is a mistake of mixing event loops; the driver throws a
``TypeError`` naming the object into the coroutine instead of hanging.

:class:`CoroutineFuture` wraps a coroutine as a ``Future``, so that a coroutine can be
handed to code that only knows ``poll`` (``Future.from_coroutine(coro)``). Its ``poll``
is the same driver loop as a coroutine task's.

Thread-safety: ``Poll`` values and the ``PENDING`` marker are immutable. A ``Future`` is
polled by one thread at a time (the task that owns it); whether it may be touched by
other threads meanwhile is up to the future (the wake side must be thread-safe).
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

if TYPE_CHECKING:
    from zuki.runtime.waker import Waker

__all__ = [
    "PENDING",
    "Context",
    "CoroutineFuture",
    "Future",
    "Pending",
    "Poll",
    "Ready",
    "yield_now",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Poll(Generic[T_co]):
    """The answer of ``Future.poll``: :class:`Ready` with a value, or :data:`PENDING`.

    ``Poll.ready(value)`` builds a ready answer and ``Poll.PENDING`` is the pending one;
    ``zuki.Ready`` and ``zuki.PENDING`` are the same things under their own names.
    """

    __slots__ = ()

    PENDING: ClassVar[Pending]
    """The single pending answer (``zuki.PENDING``)."""

    @staticmethod
    def ready(value: T) -> Ready[T]:
        """A ready answer carrying ``value``."""
        return Ready(value)

    def is_ready(self) -> bool:
        """Whether this is a :class:`Ready`."""
        raise NotImplementedError


class Ready(Poll[T_co]):
    """A ready answer; ``value`` is the future's result."""

    __slots__ = ("value",)

    def __init__(self, value: T_co) -> None:
        self.value: T_co = value

    def is_ready(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Ready({self.value!r})"


class Pending(Poll[Any]):
    """The pending answer. There is one instance, :data:`PENDING`; compare with ``is``."""

    __slots__ = ()
    _instance: ClassVar[Pending | None] = None

    def __new__(cls) -> Pending:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def is_ready(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final[Pending] = Pending()
Poll.PENDING = PENDING


class Context:
    """What a future receives when polled: the waker of the task that polls it.

    Thread-safety: immutable after construction; the waker inside is thread-safe.
    """

    __slots__ = ("waker",)

    def __init__(self, waker: Waker) -> None:
        self.waker: Waker = waker

    def __repr__(self) -> str:
        return f"Context({self.waker!r})"


class Future(Generic[T_co]):
    """A poll-based future: subclass it and implement :meth:`poll`.

    Coroutines may ``await`` any ``Future``; executors accept one anywhere they accept a
    coroutine (``spawn``, ``spawn_batch``, ``block_on``).
    """

    __slots__ = ()

    def poll(self, cx: Context) -> Poll[T_co]:
        """Return ``Poll.ready(value)`` or ``Poll.PENDING`` (after arranging a wake-up).

        Raises:
            BaseException: whatever the future fails with; it becomes the task's error
                (or is raised at the ``await`` that awaits this future).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement poll(cx)")

    def drop(self) -> None:
        """Called once by a task that gives this future up before it is ready (the task
        was cancelled): release what an earlier ``poll`` arranged (a timer, an I/O
        interest) now. It is never polled again. The default does nothing.

        zuki uses this rather than ``__del__``: on 3.13t, finalizers of objects released
        by another thread run nested inside each other (one Python frame each) and hit
        the recursion limit once thousands go at once (seen with 20,000 cancelled sleeps).
        """

    def __await__(self) -> Generator[Any, Any, T_co]:
        # The driver polls the yielded future and sends its value back (module docstring).
        value: T_co = yield self
        return value

    @staticmethod
    def from_coroutine(coro: Coroutine[Any, Any, T]) -> CoroutineFuture[T]:
        """Wrap ``coro`` as a ``Future`` whose ``poll`` steps the coroutine."""
        return CoroutineFuture(coro)


class _YieldMarker:
    """What ``yield_now`` yields to the driver: "put me at the back of the queue"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<zuki yield_now marker>"


YIELD: Final[_YieldMarker] = _YieldMarker()


class YieldNow:
    """The awaitable ``zuki.yield_now()`` returns; awaiting it yields once."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        yield YIELD

    def __repr__(self) -> str:
        return "zuki.yield_now()"


_YIELD_NOW: Final[YieldNow] = YieldNow()


def yield_now() -> YieldNow:
    """``await zuki.yield_now()``: let every other runnable task go first.

    The task is put at the back of its executor's queue (the global queue on a
    work-stealing executor, behind every task of its priority on a single-threaded one),
    so a task that yields in a loop cannot starve the others.
    """
    return _YIELD_NOW


def not_awaitable_error(obj: object) -> TypeError:
    """The error thrown into a coroutine that yielded something zuki cannot wait for."""
    return TypeError(
        f"a zuki task awaited {obj!r}, which is not a zuki awaitable: await zuki "
        "futures, JoinHandles and coroutines (asyncio objects need their own event loop)"
    )


class CoroutineFuture(Future[T]):
    """A ``Future`` that drives a coroutine: each ``poll`` steps it until it blocks.

    Thread-safety: like any future, polled by one thread at a time.
    """

    __slots__ = ("_awaiting", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._awaiting: Future[Any] | None = None

    def poll(self, cx: Context) -> Poll[T]:
        send: Any = None
        exc: BaseException | None = None
        awaiting = self._awaiting
        if awaiting is not None:
            try:
                answer = awaiting.poll(cx)
            except BaseException as e:
                exc = e
            else:
                if answer is PENDING:
                    return PENDING
                send = _ready_value(answer)
            self._awaiting = None
        coro = self._coro
        while True:
            try:
                yielded = coro.send(send) if exc is None else coro.throw(exc)
            except StopIteration as stop:
                return Ready(stop.value)
            send = exc = None
            if yielded is YIELD:
                cx.waker.wake_by_ref()
                return PENDING
            if isinstance(yielded, Future):
                try:
                    answer = yielded.poll(cx)
                except BaseException as e:
                    exc = e
                    continue
                if answer is PENDING:
                    self._awaiting = yielded
                    return PENDING
                send = _ready_value(answer)
            else:
                exc = not_awaitable_error(yielded)

    def __repr__(self) -> str:
        return f"<CoroutineFuture {self._coro!r}>"


def _ready_value(answer: Poll[T]) -> T:
    """The value of a ``Ready`` answer; a poll that answered something else is a bug."""
    if type(answer) is Ready or isinstance(answer, Ready):
        return answer.value  # type: ignore[no-any-return]
    raise TypeError(f"Future.poll() must return Poll.ready(value) or Poll.PENDING, not {answer!r}")
