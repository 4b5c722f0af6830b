"""Exceptions raised by zuki's queues.

A flat module, as in trio's ``_core/_exceptions.py``: every queue error derives from
:class:`QueueError`, so ``except QueueError`` catches any misuse of a queue, while the
second base of :class:`QueueClosed` and :class:`NotOwnerError` (``RuntimeError``) keeps
them catchable the way the standard library spells "used at the wrong time or from the
wrong thread".

``QueueEmpty`` does not exist on purpose: an empty queue is not an error. ``pop()`` and
``try_pop()`` return ``None`` (which is why ``None`` cannot be pushed).
"""

from __future__ import annotations

__all__ = ["NotOwnerError", "QueueClosed", "QueueError", "QueueFull"]


class QueueError(Exception):
    """Base class of every error raised by a zuki queue."""


class QueueFull(QueueError):
    """A bounded queue has no room and nowhere to send the overflow.

    Raised by ``LocalQueue.push`` when the queue is at capacity and it has no ``overflow``
    GlobalQueue, and by ``GlobalQueue.push``/``push_batch`` on a bounded queue without room
    for the whole push (a batch is all-or-nothing).
    """


class QueueClosed(QueueError, RuntimeError):
    """``push`` or ``push_batch`` on a GlobalQueue after ``close()``.

    Consumers are not affected: ``try_pop`` keeps draining a closed queue, so that the items
    pushed before the close are not lost at shutdown.
    """


class NotOwnerError(QueueError, RuntimeError):
    """A LocalQueue's owner-only operation was called from another thread.

    Checked only in debug mode (``LocalQueue(..., debug=True)`` or ``ZUKI_DEBUG=1``); the
    message names both threads.
    """
