"""TaskNode: the link that linked queues are made of, with an atomic ``next``.

A node carries one item and an atomic ``next`` that holds the **index** of the following
node in a ``NodeTable`` (``NIL`` = -1 for none), never an address: the atomics shim must
never hold a Python object's address (the object could move or die under it), and an
index into a table that keeps its nodes alive is the Python equivalent of zap's intrusive
``Node.next`` pointer (``research/scheduler.md`` §2.7).

Allocation. A table hands out nodes in chunks of 64 whose ``next`` cells share one
``AtomicSlab``, so a new node costs no foreign call and no buffer of its own. Released
nodes go to a free pool (a list, whose ``append``/``pop`` are atomic) up to a bound;
beyond it the node object is dropped and only its index is kept for reuse.

ABA. A released node's index is reused. A lock-free structure that reads ``next`` and
then CASes on an index must rule out the index having been released and reused in
between (a tag or sequence number next to it, or never releasing nodes that another
thread may still be reading); this module does not do it for them.

Thread-safety: ``make_node``, ``release_node``, ``node_at`` and ``link`` may be called
from any thread. A node belongs to whoever made it until it is released; it must not be
used (nor its index followed) after ``release_node``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

from zuki.concurrent import atomics

__all__ = ["NIL", "NodeTable", "TaskNode", "link", "make_node", "node_at", "release_node"]

NIL: Final = -1
"""The value of ``next`` for "no next node"."""

_CHUNK: Final = 64


class TaskNode:
    """One item and the atomic index of the next node.

    Attributes:
        index: this node's place in its table (fixed for the node's lifetime).
        item: the payload; ``None`` while the node is free.
        next: an ``AtomicInt`` holding the next node's index, or ``NIL``.
    """

    __slots__ = ("index", "item", "next")

    def __init__(self, index: int, next_cell: atomics.AtomicInt) -> None:
        self.index: Final = index
        self.item: object = None
        self.next: Final = next_cell

    def __repr__(self) -> str:
        return f"<TaskNode #{self.index} next={self.next.load()} item={self.item!r}>"


class NodeTable:
    """Makes, finds and recycles ``TaskNode``s; the owner of every node's index.

    ``pool_bound`` caps how many released node objects are kept for reuse.
    """

    __slots__ = (
        "_backend",
        "_free",
        "_free_indices",
        "_grow_lock",
        "_nodes",
        "_slabs",
        "pool_bound",
    )

    def __init__(self, *, pool_bound: int = 1024, backend: str | None = None) -> None:
        if pool_bound < 0:
            raise ValueError(f"pool_bound must be >= 0, got {pool_bound}")
        self.pool_bound: Final = pool_bound
        self._backend = backend
        self._nodes: list[TaskNode | None] = []  # index -> node; written under _grow_lock
        self._slabs: list[atomics.AtomicSlab] = []  # keeps the chunks' cells alive
        self._free: list[TaskNode] = []  # released nodes, ready for reuse
        self._free_indices: list[int] = []  # indices whose node object was dropped
        self._grow_lock = threading.Lock()

    def __len__(self) -> int:
        """Indices handed out so far (live, pooled and dropped)."""
        return len(self._nodes)

    def make_node(self, item: object) -> TaskNode:
        """A node holding ``item`` with ``next == NIL``: from the pool, or new."""
        try:
            node = self._free.pop()
        except IndexError:
            node = self._new_node()
        node.item = item
        return node

    def release_node(self, node: TaskNode) -> None:
        """Clear ``node`` (item and next) and return it to the pool, or drop it past the bound."""
        node.item = None
        node.next.store(NIL, atomics.RELEASE)
        if len(self._free) < self.pool_bound:  # racy check: the bound may be overshot slightly
            self._free.append(node)
        else:
            with self._grow_lock:
                self._nodes[node.index] = None
                self._free_indices.append(node.index)

    def node_at(self, index: int) -> TaskNode:
        """The node with ``index`` (as read from some ``next``).

        Raises:
            IndexError: ``index`` is ``NIL``, was never handed out, or its node was dropped.
        """
        node = self._nodes[index] if index >= 0 else None
        if node is None:
            raise IndexError(f"no live TaskNode with index {index}")
        return node

    def link(self, nodes: Sequence[TaskNode]) -> tuple[TaskNode, TaskNode]:
        """Chain ``nodes`` in order (each ``next`` is the following index, the last ``NIL``).

        The stores are release stores made from the tail back to the head, so a thread
        that acquire-loads its way from the head sees the whole chain. Returns
        ``(head, tail)`` for a batch push.

        Raises:
            ValueError: ``nodes`` is empty.
        """
        if not nodes:
            raise ValueError("link() needs at least one node")
        following = NIL
        for node in reversed(nodes):
            node.next.store(following, atomics.RELEASE)
            following = node.index
        return nodes[0], nodes[-1]

    def _new_node(self) -> TaskNode:
        with self._grow_lock:
            try:
                index = self._free_indices.pop()
            except IndexError:
                index = len(self._nodes)
                if index % _CHUNK == 0:
                    self._slabs.append(atomics.AtomicSlab(_CHUNK, backend=self._backend))
                self._nodes.append(None)
            cell = self._slabs[index // _CHUNK].cell(index % _CHUNK)
            cell.store(NIL, atomics.RELEASE)
            node = TaskNode(index, cell)
            self._nodes[index] = node
            return node


_default_table: Final = NodeTable()


def make_node(item: object) -> TaskNode:
    """``make_node`` on the process-wide default table."""
    return _default_table.make_node(item)


def release_node(node: TaskNode) -> None:
    """``release_node`` on the process-wide default table."""
    _default_table.release_node(node)


def node_at(index: int) -> TaskNode:
    """``node_at`` on the process-wide default table."""
    return _default_table.node_at(index)


def link(nodes: Sequence[TaskNode]) -> tuple[TaskNode, TaskNode]:
    """``link`` on the process-wide default table."""
    return _default_table.link(nodes)
