"""``make bench``: every benchmark under perf/, one report, two charts, the README summary.

    make bench                                        # = .venv/bin/python perf/run_all.py
    .venv/bin/python perf/run_all.py --rigorous       # pyperf options replace the defaults
    .venv/bin/python perf/run_all.py --full-size --rigorous   # the issues' sizes, pyperf's
                                                      # rigorous mode: hours, not minutes
    make bench BENCH_FLAGS="--rigorous"               # the same through make
    .venv/bin/python perf/run_all.py --only runtime scaling   # some modules; README untouched
    .venv/bin/python perf/run_all.py --report-only    # report, charts, README from the last run

Each ``perf/bench_*.py`` runs as a pyperf script in a process of its own, on this
interpreter. By default pyperf gets ``--fast`` (10 processes x 2 values, 1 warm-up),
except ``bench_io.py``, whose every value is a whole server run: ``-p 4 -n 2 -w 0 -l 1``;
with ``--fast`` the modules pick their smaller sizes (``bench_sync.py``: 200,000 channel
messages, not 1,000,000). About 12 minutes on 2 CPUs. Any other argument goes to every
module's pyperf as is, in place of those defaults (``--rigorous``: 40 processes;
``-p 20 -n 3``: pyperf's own default); ``--full-size`` also gives the modules their
issues' full sizes (``bench_runtime.py --full-size``, 1,000,000 channel messages).

Outputs, under perf/results/:

- ``NAME.json``: the raw pyperf JSON of ``bench_NAME.py``; ``NAME.direct.json``: what a
  module measured directly (latency percentiles, bytes per task);
- ``run.json``: date, interpreter, machine, load average at start and end, the command;
- ``summary.json``: every ratio row (``perf/report.py``), which ``perf/chart.py`` draws;
- ``report.md``: that provenance, then one ratio table per module, each with its target,
  the issue that set it and whether it is met;
- ``ratios.png`` and ``scaling.png``: drawn by ``perf/chart.py`` under the stock-python
  venv (``.venv-gil``, extra ``chart``: matplotlib stays out of the free-threaded venv);
- README.md: the section between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is
  rewritten with the targeted rows, the charts and the provenance line (full runs only).

Exit status: 0 when every module ran and everything was written (missed targets are
results, not failures), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

PERF = Path(__file__).resolve().parent
ROOT = PERF.parent
RESULTS = PERF / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
CHART_PYTHON = ROOT / ".venv-gil" / "bin" / "python"
CHARTS = ("ratios.png", "scaling.png")

DEFAULT_PYPERF = ["--fast"]
# A module whose values are slow as a whole gets fewer of them by default.
DEFAULT_PYPERF_FOR = {"io": ["-p", "4", "-n", "2", "-w", "0", "-l", "1"]}
# Size arguments for every run without ``--full-size`` (none: the modules' own defaults),
# and for ``--full-size``.
SIZE_ARGS: dict[str, list[str]] = {}
FULL_SIZE_ARGS = {"runtime": ["--full-size"], "sync": ["--messages", "1000000"]}

sys.path.insert(0, str(PERF))
import report  # noqa: E402  (perf/report.py, beside this file)


def modules() -> list[str]:
    return [p.stem.removeprefix("bench_") for p in sorted(PERF.glob("bench_*.py"))]


def _utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _rel(path: str) -> str:
    try:
        return str(Path(path).absolute().relative_to(ROOT))
    except ValueError:
        return path


def machine() -> dict[str, Any]:
    cpu_model = platform.processor() or platform.machine()
    memory_gib = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def interpreter() -> dict[str, Any]:
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        build = "free-threaded build, GIL " + ("enabled at run time" if gil else "disabled")
    else:
        build = "GIL build"
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "build": build,
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "executable": _rel(sys.executable),
        "sys_version": sys.version,
    }


def command(argv: list[str]) -> str:
    direct = shlex.join([_rel(sys.executable), _rel(__file__), *argv])
    if os.environ.get("MAKELEVEL"):
        flags = " ".join(argv)
        return f"make bench{f' BENCH_FLAGS={shlex.quote(flags)}' if flags else ''} ({direct})"
    return direct


def run_module(name: str, pyperf_args: list[str], size_args: list[str]) -> bool:
    script = PERF / f"bench_{name}.py"
    out = RESULTS / f"{name}.json"
    out.unlink(missing_ok=True)
    report.direct_path(out).unlink(missing_ok=True)
    cmd = [sys.executable, str(script), *pyperf_args, *size_args]
    cmd += ["--inherit-environ=ZUKI_ATOMICS,ZUKI_DEBUG", "-o", str(out)]
    print(f"[bench] {shlex.join([_rel(c) for c in cmd])}", flush=True)
    ok = subprocess.run(cmd, check=False, cwd=ROOT).returncode == 0 and out.exists()
    if not ok:
        print(f"[bench] {script.name} failed", file=sys.stderr, flush=True)
    return ok


def render_charts() -> list[str]:
    """Run perf/chart.py under the stock-python venv; the charts it made."""
    for name in CHARTS:
        (RESULTS / name).unlink(missing_ok=True)  # never leave a chart of another run
    if not CHART_PYTHON.exists():
        print(f"[bench] no {_rel(str(CHART_PYTHON))}: charts skipped", file=sys.stderr)
        return []
    cmd = [str(CHART_PYTHON), str(PERF / "chart.py"), str(RESULTS / "summary.json")]
    cmd += ["-o", str(RESULTS)]
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(
            f"[bench] perf/chart.py failed (is matplotlib in .venv-gil? `pip install -e "
            f"'.[chart]'`):\n{done.stderr.strip()}",
            file=sys.stderr,
        )
        return []
    return [name for name in CHARTS if (RESULTS / name).exists()]


def update_readme(section: str) -> bool:
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        print(f"[bench] README.md has no {BEGIN} ... {END}: not updated", file=sys.stderr)
        return False
    new = text[: start + len(BEGIN)] + "\n" + section.strip() + "\n" + text[end:]
    if new != text:
        README.write_text(new)
    return True


def report_and_charts(names: list[str], run: dict[str, Any], readme: bool) -> bool:
    paths = [RESULTS / f"{n}.json" for n in names if (RESULTS / f"{n}.json").exists()]
    summary = report.summarize(paths, run)
    report.write_summary(summary, RESULTS / "summary.json")
    summary["charts"] = render_charts()
    report.write_summary(summary, RESULTS / "summary.json")
    markdown = report.render_report(summary["modules"], run)
    for name in summary["charts"]:
        markdown += f"\n![{name}]({name})\n"
    (RESULTS / "report.md").write_text(markdown)
    print(markdown)
    print(f"[bench] wrote {_rel(str(RESULTS / 'report.md'))}, summary.json", end="")
    print("".join(f", {c}" for c in summary["charts"]))
    ok = len(summary["charts"]) == len(CHARTS)
    if readme:
        ok = update_readme(report.render_readme_section(summary)) and ok
        print("[bench] README.md benchmark section rewritten", flush=True)
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Run every perf/bench_*.py; other arguments go to pyperf.",
        allow_abbrev=False,
        epilog="See this file's docstring for the defaults and the outputs.",
    )
    parser.add_argument("--only", nargs="+", choices=modules(), metavar="NAME")
    parser.add_argument("--full-size", action="store_true", help="the issues' full sizes")
    parser.add_argument(
        "--report-only", action="store_true", help="no benchmarks: redo the outputs"
    )
    args, pyperf_args = parser.parse_known_args(argv)
    RESULTS.mkdir(exist_ok=True)

    if args.report_only:
        run_path = RESULTS / "run.json"
        run = json.loads(run_path.read_text()) if run_path.exists() else {}
        names = run.get("modules") or modules()
        full = set(names) == set(modules()) and not run.get("failed")
        return 0 if report_and_charts(names, run, readme=full) else 1

    names = args.only or modules()
    run: dict[str, Any] = {
        "started_utc": _utc(),
        "load_start": _load(),
        "command": command(argv),
        "interpreter": interpreter(),
        "machine": machine(),
        "modules": names,
        "options": {},
        "module_wall_s": {},
        "failed": [],
    }
    t0 = time.monotonic()
    for name in names:
        options = pyperf_args or DEFAULT_PYPERF_FOR.get(name, DEFAULT_PYPERF)
        sizes = FULL_SIZE_ARGS.get(name, []) if args.full_size else SIZE_ARGS.get(name, [])
        run["options"][name] = [*options, *sizes]
        started = time.monotonic()
        if not run_module(name, options, sizes):
            run["failed"].append(name)
        run["module_wall_s"][name] = round(time.monotonic() - started, 1)
    run["finished_utc"] = _utc()
    run["wall_s"] = round(time.monotonic() - t0, 1)
    run["load_end"] = _load()
    (RESULTS / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    full = args.only is None and not run["failed"]
    ok = report_and_charts(names, run, readme=full)
    print(f"[bench] {run['wall_s'] / 60:.1f} min; load {run['load_start']} -> {run['load_end']}")
    return 0 if ok and not run["failed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
