"""The public/private boundary: every public name is exported from ``zuki`` exactly once."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections import Counter

import zuki


def test_version_is_exported() -> None:
    assert isinstance(zuki.__version__, str)
    assert zuki.__version__.count(".") >= 2


def test_all_has_no_duplicates_and_every_name_resolves() -> None:
    counts = Counter(zuki.__all__)
    assert [name for name, n in counts.items() if n > 1] == []
    for name in zuki.__all__:
        assert hasattr(zuki, name), f"zuki.__all__ names {name!r} but zuki has no such attribute"


def test_no_public_attribute_outside_all() -> None:
    subpackages = {"concurrent", "runtime", "net"}
    stray = [
        name
        for name in vars(zuki)
        if not name.startswith("_") and name not in zuki.__all__ and name not in subpackages
    ]
    assert stray == [], f"public names missing from zuki.__all__: {stray}"


def _runtime_modules() -> list[str]:
    runtime = importlib.import_module("zuki.runtime")
    return [f"zuki.runtime.{info.name}" for info in pkgutil.iter_modules(runtime.__path__)]


def test_each_runtime_public_name_is_reexported_as_itself() -> None:
    """A name a runtime module lists in ``__all__`` and ``zuki`` exports is the same object.

    ``zuki.concurrent`` is the internal lock-free layer: its names are not re-exported
    (``zuki.Event`` is the async event of ``zuki.runtime.sync``, not the futex one).
    """
    for modname in _runtime_modules():
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", ()):
            if name in zuki.__all__:
                assert getattr(zuki, name) is getattr(module, name), f"{modname}.{name}"


def test_import_does_not_enable_the_gil() -> None:
    code = (
        "import sys, zuki, zuki.concurrent, zuki.runtime\n"
        "f = getattr(sys, '_is_gil_enabled', None)\n"
        "import sysconfig\n"
        "ft = bool(sysconfig.get_config_var('Py_GIL_DISABLED'))\n"
        "sys.exit(1 if ft and f() else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
