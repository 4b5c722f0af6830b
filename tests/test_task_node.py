"""TaskNode and NodeTable: making, linking, following and recycling nodes."""

from __future__ import annotations

import faulthandler
import threading
import time

import pytest

from zuki.concurrent import atomics, task_node
from zuki.concurrent.task_node import NIL, NodeTable, TaskNode

BACKENDS = ["libatomic", "locked"] if atomics._lib is not None else ["locked"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_table(backend: str) -> NodeTable:
    # Built inside each test, not as a fixture: pytest-run-parallel shares fixture values
    # between the threads that run one test.
    return NodeTable(pool_bound=4, backend=backend)


def test_make_node(backend: str) -> None:
    table = new_table(backend)
    node = table.make_node("job")
    assert isinstance(node, TaskNode)
    assert node.item == "job"
    assert node.next.load() == NIL
    assert table.node_at(node.index) is node
    assert "job" in repr(node)
    assert len(table) == 1


def test_link_chains_in_order(backend: str) -> None:
    table = new_table(backend)
    nodes = [table.make_node(i) for i in range(100)]  # more than one chunk
    head, tail = table.link(nodes)
    assert head is nodes[0]
    assert tail is nodes[-1]
    assert tail.next.load() == NIL
    items = []
    index = head.index
    while index != NIL:
        node = table.node_at(index)
        items.append(node.item)
        index = node.next.load(atomics.ACQUIRE)
    assert items == list(range(100))
    single = table.make_node("x")
    assert table.link([single]) == (single, single)
    with pytest.raises(ValueError, match="at least one node"):
        table.link([])


def test_release_clears_and_recycles(backend: str) -> None:
    table = new_table(backend)
    a, b = table.make_node("a"), table.make_node("b")
    table.link([a, b])
    table.release_node(a)
    assert a.item is None
    assert a.next.load() == NIL
    again = table.make_node("c")
    assert again is a
    assert again.item == "c"
    assert again.next.load() == NIL
    assert len(table) == 2


def test_pool_bound_drops_extra_nodes_but_reuses_indices(backend: str) -> None:
    table = new_table(backend)
    nodes = [table.make_node(i) for i in range(10)]
    for node in nodes:
        table.release_node(node)
    assert len(table._free) == table.pool_bound == 4
    dropped = nodes[4:]
    for node in dropped:
        with pytest.raises(IndexError, match="no live TaskNode"):
            table.node_at(node.index)
    fresh = [table.make_node(i) for i in range(10)]
    assert sorted(n.index for n in fresh) == list(range(10))  # no new indices
    assert len(table) == 10
    assert all(table.node_at(n.index) is n for n in fresh)
    assert all(n.next.load() == NIL for n in fresh)


def test_node_at_rejects_bad_indices(backend: str) -> None:
    table = new_table(backend)
    with pytest.raises(IndexError):
        table.node_at(NIL)
    with pytest.raises(IndexError):
        table.node_at(5)


def test_pool_bound_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match="pool_bound"):
        NodeTable(pool_bound=-1)


def test_module_level_helpers_use_one_table() -> None:
    nodes = [task_node.make_node(i) for i in range(3)]
    head, tail = task_node.link(nodes)
    assert task_node.node_at(head.next.load()) is nodes[1]
    assert tail is nodes[2]
    for node in nodes:
        task_node.release_node(node)
    assert all(n.item is None for n in nodes)


def test_concurrent_make_and_release_never_share_a_node(backend: str) -> None:
    table = new_table(backend)
    threads_n, rounds = 4, 2_000
    errors: list[str] = []

    def work(i: int) -> None:
        mine: list[TaskNode] = []
        for r in range(rounds):
            node = table.make_node((i, r))
            mine.append(node)
            if len(mine) == 8:
                for held in mine:
                    if held.item[0] != i:  # type: ignore[index]
                        errors.append(f"node {held.index} taken by two threads")
                    table.release_node(held)
                mine.clear()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads_n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        faulthandler.dump_traceback(all_threads=True)
        pytest.fail("threads still running after 60s (stacks dumped to stderr)")
    assert not errors
    assert len(table) <= threads_n * 8 + table.pool_bound + threads_n
