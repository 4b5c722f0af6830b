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
REQUIRED = (
    "multi_threaded_example",
    "batch_submission_example",
    "performance_comparison",
    "echo_server",
    "http_hello",
    "file_pipeline",
)


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


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>.py`` with ``args`` in a fresh interpreter, with a timeout."""
    env = dict(os.environ)
    # The child imports the same zuki as this process, wherever that is.
    zuki_parent = str(Path(zuki.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (zuki_parent, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.thread_unsafe(reason="runs a whole process; parallel copies only add load")
@pytest.mark.parametrize("path", example_params())
def test_example_runs_with_short(path: Path) -> None:
    result = run_example(path.stem, "--short")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.strip(), "the example printed nothing"
    assert "Traceback" not in result.stderr, result.stderr


LOG_LINE = '10.0.0.{} - - [24/Nov/2026:{:02d}:05:09 +0000] "GET {} HTTP/1.1" {} {}\n'


@pytest.mark.thread_unsafe(reason="runs a whole process; parallel copies only add load")
def test_file_pipeline_verifies_generated_logs() -> None:
    result = run_example("file_pipeline", "--short", "--workers", "2")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "verified: the pipeline's totals equal a sequential pass" in result.stdout
    # The generated set holds one corrupt file on purpose: reported, not fatal.
    assert "parsed 23 of 24 files" in result.stdout
    assert "skipped access-0007.log: ValueError: line 201" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.thread_unsafe(reason="runs a whole process; parallel copies only add load")
def test_file_pipeline_reports_bad_files_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(
        LOG_LINE.format(1, 9, "/", 200, 512) + LOG_LINE.format(2, 10, "/x?q=1", 304, "-")
    )
    (tmp_path / "b.log").write_text(LOG_LINE.format(3, 10, "/x", 404, 100))
    (tmp_path / "malformed.log").write_text(LOG_LINE.format(4, 11, "/", 200, 1) + "garbage\n")
    (tmp_path / "binary.log").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")  # not UTF-8
    (tmp_path / "gone.log").symlink_to(tmp_path / "deleted.log")  # unreadable: open fails
    (tmp_path / "subdir").mkdir()  # not a file: not listed

    result = run_example("file_pipeline", str(tmp_path), "--workers", "3")
    out = result.stdout
    assert result.returncode == 0, f"stdout:\n{out}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert "parsed 2 of 5 files: 3 requests" in out
    assert "skipped malformed.log: ValueError: line 2 is not a log line: 'garbage'" in out
    assert "skipped binary.log: UnicodeDecodeError" in out
    assert "skipped gone.log: FileNotFoundError" in out
    assert "status codes:  200 33.3%, 304 33.3%, 404 33.3%" in out
    assert "top paths:     /x 2, / 1" in out
    assert "verified: the pipeline's totals equal a sequential pass" in out
