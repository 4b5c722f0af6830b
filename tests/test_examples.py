"""Every example in examples/ runs to completion with ``--short``.

Each example runs in a fresh interpreter (the one running the tests) with a timeout.
Long-running servers (``echo_server``, ``http_hello``) are skipped unless they accept
``--short``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import zuki

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SERVERS = {"echo_server", "http_hello"}
TIMEOUT = 120
#: Examples the issue requires; a missing one is a failure, not a silent skip.
REQUIRED = ("multi_threaded_example", "batch_submission_example")


def example_params() -> list[object]:
    params = []
    for path in sorted(EXAMPLES.glob("*.py")):
        marks = []
        if path.stem in SERVERS and "--short" not in path.read_text():
            marks.append(pytest.mark.skip(reason="a server without --short"))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_required_examples_exist() -> None:
    for name in REQUIRED:
        assert (EXAMPLES / f"{name}.py").is_file(), f"examples/{name}.py is missing"


@pytest.mark.thread_unsafe(reason="runs a whole process; parallel copies only add load")
@pytest.mark.parametrize("path", example_params())
def test_example_runs_with_short(path: Path) -> None:
    env = dict(os.environ)
    # The child imports the same zuki as this process, wherever that is.
    zuki_parent = str(Path(zuki.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (zuki_parent, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, str(path), "--short"],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.strip(), "the example printed nothing"
    assert "Traceback" not in result.stderr, result.stderr
