"""Suite-wide guards: the GIL must stay disabled, and a hang dumps every thread's stack.

Hang timeouts come from pytest-timeout (``timeout`` in pyproject.toml, ``thread`` method:
on expiry it dumps the stacks of all threads and ends the run) with pytest's own
``faulthandler_timeout`` as a second line. Individual tests that start threads also bound
their own waits (see ``tests/helpers.py``).
"""

from __future__ import annotations

import sys
import sysconfig

import pytest

FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"zuki: free-threaded build: {FREE_THREADED_BUILD}, GIL enabled at start: {gil_enabled()}"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a free-threaded run that ends with the GIL re-enabled (importing zuki must not)."""
    if FREE_THREADED_BUILD and gil_enabled():
        sys.stderr.write(
            "\nERROR: the GIL was enabled at the end of a free-threaded test run; "
            "something imported an extension that re-enabled it.\n"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
