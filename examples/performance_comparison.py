"""zuki against ThreadPoolExecutor, asyncio and processes on this machine (``make demo``)."""

from __future__ import annotations

import os
import platform
import sys


def interpreter_line() -> str:
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    gil_disabled = is_enabled is not None and not is_enabled()
    return (
        f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable}) | GIL disabled: {gil_disabled} | cores: {os.cpu_count()}"
    )


def main() -> None:
    print(interpreter_line())


if __name__ == "__main__":
    main()
