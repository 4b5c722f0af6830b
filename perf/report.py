"""Turn the benchmark results under perf/results/ into ratio tables (markdown and JSON).

Each benchmark module under perf/ declares ``RATIOS``, a list of
``(zuki, reference, target, source[, kind])``:

``zuki``, ``reference``
    a case name: the mean of that pyperf benchmark (seconds per item), or a direct
    measurement that the module wrote to ``NAME.direct.json`` beside its pyperf JSON
    (``{"values": {case: {"value": v, "unit": "s" | "B"}}}``: latency percentiles,
    bytes per task, anything that is not the timing of a repeated function);
    or a pair ``(before, after)`` of case names: the speedup ``before / after`` (say
    1 worker, then 2), so that two speedups can be compared (fork-join on 2 workers
    against 2 processes). ``reference`` may be ``None`` for kind ``"max"``.
``target``
    the number the issue set, or ``None`` for a ratio that is only reported.
``source``
    where the target comes from (``"issue 4"``), or ``"reported"``.
``kind``
    ``"slowdown"`` (the default): zuki's time over the reference's, lower is better, the
    target is a maximum; ``"speedup"``: the reference's time over zuki's, higher is better,
    the target is a minimum; ``"ceiling"``: a speedup where the reference is the machine's
    ceiling (the same work in N processes, which share nothing), shown as a fraction of
    it; ``"max"``: zuki's own value must not exceed ``target`` (in its unit: seconds or
    bytes), the reference only shown next to it.

A module may also define ``chart_series(values) -> dict`` (``bench_scaling.py`` does):
series for perf/chart.py, stored in the summary as they are.

    python perf/report.py perf/results/concurrent.json [more.json ...]
    python perf/report.py --run perf/results/run.json --summary s.json -o r.md files...

``perf/run_all.py`` (``make bench``) calls this for every module it ran.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

PERF = Path(__file__).resolve().parent
ROOT = PERF.parent
KINDS = ("slowdown", "speedup", "ceiling", "max")

Operand = str | tuple[str, str]


class Measure(NamedTuple):
    value: float
    unit: str  # "s", "B", or "rel" (a time relative to another: 1 / speedup)
    rsd: float | None = None  # relative standard deviation, when there are several values


class Spec(NamedTuple):
    zuki: Operand
    reference: Operand | None
    target: float | None
    source: str
    kind: str


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------

_modules: dict[Path, ModuleType] = {}


def load_module(module_path: Path) -> ModuleType:
    """Import a benchmark module by path (once), without running its ``main``."""
    module = _modules.get(module_path)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        _modules[module_path] = module
    return module


def specs_of(ratios: Sequence[Sequence[Any]]) -> list[Spec]:
    out = []
    for entry in ratios:
        zuki, reference, target, source, *rest = entry
        kind = rest[0] if rest else "slowdown"
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} in RATIOS entry {entry!r}")
        out.append(Spec(zuki, reference, target, source, kind))
    return out


def load_values(json_path: Path) -> tuple[dict[str, Measure], dict[str, str]]:
    """Every case of one module: pyperf means (per item), then its direct measurements.
    Also returns the pyperf metadata common to all its benchmarks."""
    import pyperf

    values: dict[str, Measure] = {}
    meta: dict[str, str] = {}
    if json_path.exists():
        suite = pyperf.BenchmarkSuite.load(str(json_path))
        for bench in suite.get_benchmarks():
            mean = bench.mean()
            rsd = bench.stdev() / mean if bench.get_nvalue() > 1 and mean else None
            values[bench.get_name()] = Measure(mean, "s", rsd)
        meta = {str(k): str(v) for k, v in suite.get_metadata().items()}
    direct = direct_path(json_path)
    if direct.exists():
        payload = json.loads(direct.read_text())
        for name, entry in payload.get("values", {}).items():
            values[name] = Measure(float(entry["value"]), entry.get("unit", "s"))
    return values, meta


def direct_path(json_path: Path) -> Path:
    return json_path.with_name(json_path.stem + ".direct.json")


# --------------------------------------------------------------------------------------
# evaluating one ratio
# --------------------------------------------------------------------------------------


def fmt_value(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "rel":
        return f"{1 / value:.2f}x speedup"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    if value >= 1e-6:
        return f"{value * 1e6:.2f} us"
    return f"{value * 1e9:.0f} ns"


def _label(operand: Operand | None) -> str:
    if operand is None:
        return "-"
    if isinstance(operand, tuple):
        before, after = operand
        prefix, _, rest = before.partition(": ")
        if rest and after.startswith(prefix + ": "):
            return f"{after} vs {rest}"  # "fib: zuki 2 workers vs zuki 1 worker"
        return f"{after} vs {before}"
    return operand


def _measure(operand: Operand | None, values: dict[str, Measure]) -> Measure | None:
    if operand is None:
        return None
    if isinstance(operand, tuple):
        before, after = (values.get(name) for name in operand)
        if before is None or after is None:
            return None
        return Measure(after.value / before.value, "rel")
    return values.get(operand)


def _shown(m: Measure) -> str:
    text = fmt_value(m.value, m.unit)
    if m.rsd is not None and m.rsd >= 0.005:
        text += f" ±{m.rsd * 100:.0f}%"
    return text


def _noun(unit: str) -> str:
    return "the memory" if unit == "B" else "the time"


def evaluate(module: str, spec: Spec, values: dict[str, Measure]) -> dict[str, Any]:
    """One row: the two sides, the ratio, the target and whether it is met.

    ``advantage`` is the ratio turned so that higher is better for zuki (>1: zuki ahead of
    the reference); ``target_advantage`` is the target on that scale (for the chart)."""
    z = _measure(spec.zuki, values)
    r = _measure(spec.reference, values)
    row: dict[str, Any] = {
        "module": module,
        "zuki": _label(spec.zuki),
        "reference": _label(spec.reference),
        "kind": spec.kind,
        "source": spec.source,
        "target": spec.target,
        "zuki_shown": "-" if z is None else _shown(z),
        "reference_shown": "-" if r is None else _shown(r),
        "ratio": None,
        "ratio_shown": "not measured",
        "target_shown": "",
        "met": None,
        "measured": False,
        "advantage": None,
        "target_advantage": None,
    }
    t = spec.target
    kind = spec.kind
    if kind == "slowdown":
        row["target_shown"] = "" if t is None else f"<= {t:g}x"
    elif kind == "speedup":
        row["target_shown"] = "" if t is None else f">= {t:g}x"
    elif kind == "ceiling":
        row["target_shown"] = "" if t is None else f">= {t:g} of the ceiling"
    else:
        unit = z.unit if z is not None else "s"
        row["target_shown"] = "" if t is None else f"<= {fmt_value(t, unit)}"
    if z is None or (r is None and (spec.reference is not None or kind != "max")):
        missing = [
            name
            for operand in (spec.zuki, spec.reference)
            if operand is not None
            for name in (operand if isinstance(operand, tuple) else (operand,))
            if name not in values
        ]
        row["ratio_shown"] = "not measured"
        row["missing"] = missing
        return row
    row["measured"] = True
    if kind == "max":
        ratio = None if r is None else z.value / r.value
        row["ratio"] = ratio
        row["ratio_shown"] = "" if ratio is None else f"{ratio:.2f}x {_noun(z.unit)}"
        if t is not None:
            row["met"] = z.value <= t
        if r is not None:
            row["advantage"] = r.value / z.value
            row["target_advantage"] = None if t is None else r.value / t
        else:
            row["advantage"] = None if t is None else t / z.value
            row["target_advantage"] = None if t is None else 1.0
        return row
    assert r is not None
    if kind == "slowdown":
        ratio = z.value / r.value
        row["ratio_shown"] = f"{ratio:.2f}x {_noun(z.unit)}"
        row["met"] = None if t is None else ratio <= t
        row["advantage"] = 1 / ratio
        row["target_advantage"] = None if t is None else 1 / t
    else:
        ratio = r.value / z.value
        if kind == "ceiling":
            row["ratio_shown"] = f"{ratio:.2f} of the ceiling"
        elif z.unit == "rel":
            row["ratio_shown"] = f"{ratio:.2f}x their speedup"
        else:
            row["ratio_shown"] = f"{ratio:.2f}x " + ("faster" if ratio >= 1 else "the speed")
        row["met"] = None if t is None else ratio >= t
        row["advantage"] = ratio
        row["target_advantage"] = t
    row["ratio"] = ratio
    return row


def met_cell(row: dict[str, Any]) -> str:
    if not row["measured"]:
        return "not measured"
    if row["met"] is None:
        return ""
    return "yes" if row["met"] else "**MISSED**"


def _against(row: dict[str, Any]) -> str:
    if row["kind"] == "ceiling":
        return f"**ceiling**: {row['reference']}"
    return str(row["reference"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------


def render_rows(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| zuki | against | zuki | theirs | ratio | target | source | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row["zuki"],
            _against(row),
            row["zuki_shown"],
            row["reference_shown"],
            row["ratio_shown"],
            row["target_shown"],
            row["source"],
            met_cell(row),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render_table(
    ratios: Sequence[Sequence[Any]], values: dict[str, Measure], module: str = ""
) -> str:
    """The ratio table of one module from plain values (the ``--quick`` modes use this)."""
    return render_rows([evaluate(module, spec, values) for spec in specs_of(ratios)])


def module_result(json_path: Path) -> dict[str, Any]:
    """Rows, metadata and chart series of one module's results."""
    module_path = PERF / f"bench_{json_path.stem}.py"
    module = load_module(module_path)
    values, meta = load_values(json_path)
    rows = [evaluate(json_path.stem, s, values) for s in specs_of(getattr(module, "RATIOS", []))]
    series_fn = getattr(module, "chart_series", None)
    series = series_fn({k: v.value for k, v in values.items()}) if series_fn else None
    return {
        "name": json_path.stem,
        "file": module_path.name,
        "json": _rel(json_path),
        "direct": _rel(direct_path(json_path)) if direct_path(json_path).exists() else None,
        "doc": (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "",
        "metadata": meta,
        "rows": rows,
        "series": series,
        "benchmarks": len(values),
    }


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _load(values: Sequence[float] | None) -> str:
    return "?" if not values else " / ".join(f"{v:.2f}" for v in values)


def header_lines(run: dict[str, Any]) -> list[str]:
    """The provenance of a run (perf/run_all.py's ``run.json``) as markdown bullets."""
    if not run:
        return []
    machine = run.get("machine", {})
    interp = run.get("interpreter", {})
    lines = [
        f"- Date: {run.get('started_utc', '?')} to {run.get('finished_utc', '?')} "
        f"({_duration(run.get('wall_s', 0.0))})",
        f"- Interpreter: {interp.get('implementation', 'CPython')} {interp.get('version', '?')}, "
        f"{interp.get('build', '?')} (`{interp.get('executable', '?')}`)",
        f"- Machine: {machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} CPUs, "
        f"{machine.get('memory_gib', 0):.1f} GiB memory, {machine.get('platform', '?')}",
        f"- Load average (1/5/15 min): {_load(run.get('load_start'))} at the start, "
        f"{_load(run.get('load_end'))} at the end",
        f"- Command: `{run.get('command', '?')}`",
    ]
    options = run.get("options", {})
    if options:
        parts = [f"{name}: `{' '.join(opts)}`" for name, opts in options.items()]
        lines.append("- pyperf options: " + "; ".join(parts))
    times = run.get("module_wall_s", {})
    if times:
        lines.append(
            "- Time per module: " + ", ".join(f"{k} {_duration(v)}" for k, v in times.items())
        )
    failed = run.get("failed", [])
    if failed:
        lines.append(f"- **Failed** (no results): {', '.join(failed)}")
    return lines


def _counts(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    targeted = [r for r in rows if r["target"] is not None]
    met = sum(1 for r in targeted if r["met"])
    unmeasured = sum(1 for r in targeted if not r["measured"])
    return len(targeted), met, unmeasured


def render_report(modules: list[dict[str, Any]], run: dict[str, Any]) -> str:
    all_rows = [r for m in modules for r in m["rows"]]
    total, met, unmeasured = _counts(all_rows)
    out = ["# zuki benchmark report", ""]
    out += header_lines(run)
    out += [
        "",
        f"**{met} of {total} targets met**"
        + (f" ({unmeasured} not measured)" if unmeasured else "")
        + ". Ratios come from one run on one machine: each zuki case next to what a user"
        " would pick instead (`ThreadPoolExecutor`, `asyncio`, `queue`), and, marked"
        " **ceiling**, next to the same work in N processes, which share nothing.",
        "",
        "Kinds: *x the time* is zuki's time over theirs (lower is better); *x faster*"
        " (below 1: *x the speed*) is their time over zuki's (higher is better); *of the"
        " ceiling* is zuki's speed as a fraction of the processes'; *x their speedup*"
        " compares two speedups (N workers vs 1). `±` is pyperf's relative standard"
        " deviation. Targets come from the issue named in *source*; *reported* rows have"
        " none.",
    ]
    for m in modules:
        out += ["", f"## {m['file']}", ""]
        if m["doc"]:
            out += [m["doc"], ""]
        if not m["rows"]:
            out.append("(no ratios)")
        else:
            out.append(render_rows(m["rows"]))
        meta = m["metadata"]
        facts = [f"raw: `{m['json']}`"]
        if m["direct"]:
            facts.append(f"direct measurements: `{m['direct']}`")
        keys = ("zuki_workers", "scaling_workers", "zuki_atomics_backend", "channel_messages")
        for key in (*keys, "gil_enabled", "wrk"):
            if key in meta:
                facts.append(f"{key}={meta[key]}")
        out += ["", "; ".join(facts) + "."]
        missing = sorted({n for r in m["rows"] for n in r.get("missing", [])})
        if missing:
            out += [
                "",
                "Not measured (no such benchmark in the results): "
                + ", ".join(f"`{n}`" for n in missing)
                + ".",
            ]
    return "\n".join(out) + "\n"


def render_readme_section(summary: dict[str, Any]) -> str:
    """The part of README.md between the bench markers: targeted rows and the charts."""
    run = summary.get("run", {})
    rows = [r for m in summary["modules"] for r in m["rows"] if r["target"] is not None]
    total, met, unmeasured = _counts(rows)
    machine = run.get("machine", {})
    interp = run.get("interpreter", {})
    out = [
        f"Generated on {run.get('started_utc', '?')} by `{run.get('command', 'make bench')}`: "
        f"{interp.get('implementation', 'CPython')} {interp.get('version', '?')} "
        f"({interp.get('build', '?')}), {machine.get('cpu_model', '?')}, "
        f"{machine.get('cpus', '?')} CPUs, {machine.get('memory_gib', 0):.0f} GiB, load average "
        f"{_load((run.get('load_start') or [None])[:1])} at the start and "
        f"{_load((run.get('load_end') or [None])[:1])} at the end. "
        f"**{met} of {total} targets met**"
        + (f" ({unmeasured} not measured)." if unmeasured else ".")
        + " The full tables (every reported ratio, times, "
        "spread) are in [`perf/results/report.md`](perf/results/report.md), the raw pyperf "
        "JSON beside it.",
        "",
        "| benchmark | zuki | against | ratio | target | source | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["module"],
            r["zuki"],
            _against(r),
            r["ratio_shown"] if r["kind"] != "max" else f"{r['zuki_shown']}",
            r["target_shown"],
            r["source"],
            met_cell(r),
        ]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for name, alt in (("ratios.png", "ratio chart"), ("scaling.png", "scaling chart")):
        if (ROOT / "perf" / "results" / name).exists() and name in summary.get("charts", []):
            out += ["", f"![{alt}](perf/results/{name})"]
    return "\n".join(out)


def summarize(json_paths: list[Path], run: dict[str, Any]) -> dict[str, Any]:
    modules = [module_result(p) for p in json_paths]
    return {"run": run, "modules": modules}


def _clean(obj: Any) -> Any:
    """JSON cannot hold inf/nan: they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_summary(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(_clean(summary), indent=1, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="pyperf JSON, one per module")
    parser.add_argument("--run", type=Path, help="run.json written by perf/run_all.py")
    parser.add_argument("--summary", type=Path, help="also write the rows as JSON here")
    parser.add_argument("-o", "--output", type=Path, help="write the markdown here")
    args = parser.parse_args(argv)
    run = json.loads(args.run.read_text()) if args.run else {}
    summary = summarize(args.files, run)
    markdown = render_report(summary["modules"], run)
    if args.output:
        args.output.write_text(markdown)
    else:
        print(markdown)
    if args.summary:
        write_summary(summary, args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
