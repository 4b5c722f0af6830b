"""Edges of zuki.concurrent.event: where futex is unavailable, the ``ZUKI_EVENT``
override, and futex errors that are bugs (raised, not retried).

The import-time helpers are called again with the module's view of the platform patched
(no re-import), so these run on any host.
"""

from __future__ import annotations

import ctypes
import errno
import types
from typing import Any

import pytest

from zuki.concurrent import atomics
from zuki.concurrent import event as event_module
from zuki.concurrent.event import Event

FUTEX_AVAILABLE = event_module._syscall is not None
needs_futex = pytest.mark.skipif(not FUTEX_AVAILABLE, reason="no futex on this platform")


# --- finding the futex system call ------------------------------------------------------


def test_no_futex_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_module, "sys", types.SimpleNamespace(platform="darwin"))
    assert event_module._load_futex() is None


def test_no_futex_without_libatomic_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    # the futex word is a libatomic cell: with the locked fallback there is none
    monkeypatch.setattr(atomics, "BACKEND", "locked")
    assert event_module._load_futex() is None


def test_no_futex_on_an_unknown_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    if event_module.atomics.BACKEND != "libatomic":
        pytest.skip("needs the libatomic backend to get that far")
    monkeypatch.setattr(event_module, "sys", types.SimpleNamespace(platform="linux"))
    monkeypatch.setattr(event_module, "platform", types.SimpleNamespace(machine=lambda: "vax"))
    assert event_module._load_futex() is None


@pytest.mark.parametrize("failure", ["no libc", "no syscall"])
def test_no_futex_when_libc_has_no_syscall(monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    if event_module.atomics.BACKEND != "libatomic":
        pytest.skip("needs the libatomic backend to get that far")
    monkeypatch.setattr(event_module, "sys", types.SimpleNamespace(platform="linux"))
    monkeypatch.setattr(event_module, "platform", types.SimpleNamespace(machine=lambda: "x86_64"))

    def cdll(name: Any, use_errno: bool = False) -> Any:
        if failure == "no libc":
            raise OSError("no libc here")
        return types.SimpleNamespace()  # a libc without syscall()

    monkeypatch.setattr(event_module.ctypes, "CDLL", cdll)
    assert event_module._load_futex() is None


@needs_futex
def test_futex_is_found_here() -> None:
    fn = event_module._load_futex()
    assert fn is not None and fn.restype is ctypes.c_long


# --- choosing the backend ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "have_futex", "expected"),
    [
        ("", False, "portable"),
        ("portable", False, "portable"),
        (" Portable ", True, "portable"),
        ("", True, "futex"),
        ("futex", True, "futex"),
    ],
)
def test_default_backend(
    monkeypatch: pytest.MonkeyPatch, wanted: str, have_futex: bool, expected: str
) -> None:
    if have_futex and not FUTEX_AVAILABLE:
        pytest.skip("no futex on this platform")
    monkeypatch.setenv("ZUKI_EVENT", wanted)
    monkeypatch.setattr(event_module, "_syscall", event_module._syscall if have_futex else None)
    assert event_module._default_backend() == expected


def test_default_backend_rejects_a_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZUKI_EVENT", "spin")
    with pytest.raises(ImportError, match="ZUKI_EVENT='spin'"):
        event_module._default_backend()


def test_default_backend_insists_on_futex_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZUKI_EVENT", "futex")
    monkeypatch.setattr(event_module, "_syscall", None)
    with pytest.raises(ImportError, match="futex system call is not available"):
        event_module._default_backend()


def test_futex_event_is_refused_where_futex_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_module, "_syscall", None)
    with pytest.raises(ValueError, match="'futex' is not available"):
        Event(backend="futex")
    assert Event(backend="portable").backend == "portable"
    with pytest.raises(ValueError, match="unknown Event backend 'spin'"):
        Event(backend="spin")


# --- futex errors -----------------------------------------------------------------------


@needs_futex
def test_unexpected_futex_errors_are_raised() -> None:
    ev = Event(backend="futex")
    assert ev.backend == "futex"
    # A futex word must be 4-byte aligned: the kernel answers EINVAL, which is a bug in
    # the caller, not a spurious wake-up to retry.
    ev._uaddr = ctypes.c_void_p(ev._cell.address + 1)  # type: ignore[attr-defined]
    with pytest.raises(OSError, match="futex wait") as wait_info:
        ev._futex_wait(0, 0.01)  # type: ignore[attr-defined]
    assert wait_info.value.errno == errno.EINVAL
    with pytest.raises(OSError, match="futex wake") as wake_info:
        ev._futex_wake(1)  # type: ignore[attr-defined]
    assert wake_info.value.errno == errno.EINVAL


@needs_futex
def test_futex_wait_on_a_changed_word_returns_for_a_recheck() -> None:
    ev = Event(backend="futex")
    # the word is 0, we say we expect 1: EAGAIN, returned quietly (the caller rechecks)
    ev._futex_wait(1, None)  # type: ignore[attr-defined]
    # a short timeout: ETIMEDOUT, also returned quietly
    ev._futex_wait(0, 0.001)  # type: ignore[attr-defined]
    assert ev.wait(0) is False
    ev.notify()
    assert ev.wait(0) is True
