"""Turn pyperf JSON files into the markdown ratio table of perf/README.md.

Each benchmark module under perf/ declares ``RATIOS``: tuples of
``(zuki case, reference case, target, source[, kind])``. ``kind`` is ``"slowdown"``
(the default: zuki's time over the reference's, lower is better, target is a maximum) or
``"speedup"`` (the reference's time over zuki's, higher is better, target is a minimum).

    python perf/report.py perf/results/concurrent.json [more.json ...]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyperf

PERF = Path(__file__).resolve().parent


def _ratios_of(module_path: Path) -> list[tuple[str, str, float | None, str, str]]:
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    rows = []
    for entry in getattr(module, "RATIOS", []):
        zuki_case, ref_case, target, source, *rest = entry
        rows.append((zuki_case, ref_case, target, source, rest[0] if rest else "slowdown"))
    return rows


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms"


def table(json_path: Path) -> str:
    suite = pyperf.BenchmarkSuite.load(str(json_path))
    means = {b.get_name(): b.mean() for b in suite.get_benchmarks()}
    module_path = PERF / f"bench_{json_path.stem}.py"
    lines = [
        f"### {module_path.name}",
        "",
        "| zuki | against | zuki time | their time | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for zuki_case, ref_case, target, source, kind in _ratios_of(module_path):
        if zuki_case not in means or ref_case not in means:
            lines.append(f"| {zuki_case} | {ref_case} | - | - | not measured | | |")
            continue
        ours, theirs = means[zuki_case], means[ref_case]
        if kind == "speedup":
            ratio = theirs / ours
            shown = f"{ratio:.2f}x faster"
            target_s = f">= {target}x ({source})" if target else source
            met = "" if target is None else ("yes" if ratio >= target else "**MISSED**")
        else:
            ratio = ours / theirs
            shown = f"{ratio:.2f}x the time"
            target_s = f"<= {target}x ({source})" if target else source
            met = "" if target is None else ("yes" if ratio <= target else "**MISSED**")
        lines.append(
            f"| {zuki_case} | {ref_case} | {_fmt_time(ours)} | {_fmt_time(theirs)} "
            f"| {shown} | {target_s} | {met} |"
        )
    meta = suite.get_metadata()
    lines.append("")
    lines.append(
        f"python {meta.get('python_version', '?')}, gil_enabled={meta.get('gil_enabled', '?')}, "
        f"cpu_count={meta.get('cpu_count', '?')}, {meta.get('cpu_model_name', '')}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    print("\n\n".join(table(Path(p)) for p in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
