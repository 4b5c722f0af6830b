"""``make bench``: run every pyperf benchmark under perf/ and print one ratio table.

Raw pyperf JSON goes to perf/results/NAME.json, the table to perf/results/report.md.
Pass ``--rigorous`` (or any pyperf option) through; the default is ``--fast``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PERF = Path(__file__).resolve().parent
RESULTS = PERF / "results"


def main(argv: list[str]) -> int:
    options = argv or ["--fast"]
    RESULTS.mkdir(exist_ok=True)
    outputs = []
    for bench in sorted(PERF.glob("bench_*.py")):
        name = bench.stem.removeprefix("bench_")
        out = RESULTS / f"{name}.json"
        out.unlink(missing_ok=True)
        print(f"[bench] {bench.name} -> {out.relative_to(PERF.parent)}", flush=True)
        cmd = [sys.executable, str(bench), *options, "--inherit-environ=ZUKI_ATOMICS,ZUKI_DEBUG"]
        if subprocess.run([*cmd, "-o", str(out)], check=False).returncode != 0:
            print(f"[bench] {bench.name} failed", file=sys.stderr)
            return 1
        outputs.append(str(out))
    report = subprocess.run(
        [sys.executable, str(PERF / "report.py"), *outputs],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (RESULTS / "report.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
