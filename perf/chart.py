"""Draw perf/results/summary.json (written by perf/report.py) as two PNG charts.

- ``ratios.png``: every measured ratio of every module, as zuki's advantage over the
  other side (higher is better, log scale; 1 is parity), coloured by whether its target is
  met, with the target drawn as a black mark on its bar;
- ``scaling.png``: speedup over 1 worker against the worker count, one line per executor,
  with the ideal line, for each grain of ``bench_scaling.py``.

Runs under the stock-python venv (``.venv-gil``, ``pip install -e '.[chart]'``): it needs
matplotlib and nothing else, and never imports zuki or pyperf.

    .venv-gil/bin/python perf/chart.py [perf/results/summary.json] [-o perf/results]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

RESULTS = Path(__file__).resolve().parent / "results"
MET, MISSED, REPORTED = "#2e7d32", "#c62828", "#9e9e9e"
EXECUTOR_STYLE = {
    "zuki": ("#1565c0", "o", "zuki WorkStealingExecutor"),
    "ThreadPoolExecutor": ("#ef6c00", "s", "ThreadPoolExecutor"),
    "processes": ("#6a1b9a", "^", "ProcessPoolExecutor (spawn): the ceiling"),
}
# where each series' point labels go (points), so that close lines do not overprint them
LABEL_OFFSET = {"zuki": (7, -1), "ThreadPoolExecutor": (7, -13), "processes": (-36, 7)}


def provenance(run: dict[str, Any]) -> str:
    machine = run.get("machine", {})
    interp = run.get("interpreter", {})
    load = run.get("load_start") or [float("nan")]
    load_end = run.get("load_end") or [float("nan")]
    return (
        f"{machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} CPUs; "
        f"{interp.get('implementation', 'CPython')} {interp.get('version', '?')} "
        f"({interp.get('build', '?')}); {run.get('started_utc', '?')}; "
        f"load {load[0]:.1f} -> {load_end[0]:.1f}"
    )


def _shorten(text: str, width: int = 58) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _bar_text(row: dict[str, Any]) -> str:
    if row["kind"] == "max":
        text = f"{row['zuki_shown']} (limit {row['target_shown'].removeprefix('<= ')})"
    else:
        text = row["ratio_shown"]
    if row["target_shown"] and row["kind"] != "max":
        text += f"  [target {row['target_shown']}]"
    return text


def ratios_chart(summary: dict[str, Any], out: Path) -> None:
    modules = []
    for m in summary["modules"]:
        rows = [r for r in m["rows"] if r.get("advantage")]
        if rows:
            modules.append((m["file"], rows))
    if not modules:
        raise SystemExit("chart: no measured ratios in the summary")
    heights = [len(rows) + 1.2 for _, rows in modules]
    fig, axes = plt.subplots(
        len(modules),
        1,
        figsize=(15, 0.36 * sum(heights) + 1.6),
        gridspec_kw={"height_ratios": heights},
        sharex=True,
        squeeze=False,
    )
    values = [r["advantage"] for _, rows in modules for r in rows]
    values += [r["target_advantage"] for _, rows in modules for r in rows if r["target_advantage"]]
    lo = min(0.5, min(values) / 1.6)
    hi = max(2.0, max(values) * 12)  # room for the text right of the bars
    for ax, (title, rows) in zip(axes[:, 0], modules, strict=True):
        ys = list(range(len(rows)))[::-1]
        colours = [REPORTED if r["met"] is None else (MET if r["met"] else MISSED) for r in rows]
        # Bars grow from parity (1): right when zuki is ahead, left when it is behind.
        advantages = [r["advantage"] for r in rows]
        ax.barh(
            ys,
            [abs(a - 1) for a in advantages],
            left=[min(a, 1.0) for a in advantages],
            color=colours,
            height=0.7,
        )
        for y, r in zip(ys, rows, strict=True):
            target = r["target_advantage"]
            if target:
                ax.vlines(target, y - 0.45, y + 0.45, color="black", lw=2.4)
            right = max(r["advantage"], target or 0.0, 1.0)
            ax.text(right * 1.1, y, _bar_text(r), va="center", ha="left", fontsize=7.5)
        labels = [
            _shorten(r["zuki"])
            + "\n vs "
            + _shorten(("ceiling: " if r["kind"] == "ceiling" else "") + r["reference"])
            for r in rows
        ]
        ax.set_yticks(ys, labels, fontsize=7)
        ax.axvline(1.0, color="#424242", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}x"))
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
        ax.grid(axis="x", which="both", color="#e0e0e0", lw=0.5)
        ax.set_axisbelow(True)
    axes[-1, 0].set_xlabel(
        "zuki's advantage (log scale): > 1 means zuki is ahead of the other side "
        "(faster, smaller, or nearer the ceiling); 1 = parity"
    )
    handles = [
        Patch(color=MET, label="target met"),
        Patch(color=MISSED, label="target missed"),
        Patch(color=REPORTED, label="reported (no target)"),
        Line2D([], [], color="black", lw=2.2, label="target"),
        Line2D([], [], color="#424242", lw=0.8, ls="--", label="parity"),
    ]
    fig.legend(handles=handles, loc="upper right", ncols=5, fontsize=8, frameon=False)
    fig.suptitle(
        "zuki benchmark ratios\n" + provenance(summary.get("run", {})),
        x=0.01,
        ha="left",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def scaling_chart(summary: dict[str, Any], out: Path) -> bool:
    series = next(
        (
            m["series"]
            for m in summary["modules"]
            if (m.get("series") or {}).get("kind") == "scaling"
        ),
        None,
    )
    if series is None:
        return False
    workers = series["workers"]
    panels = series["panels"]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.2), squeeze=False)
    top = max(workers)
    for ax, panel in zip(axes[0], panels, strict=True):
        ys: list[float] = []
        order = [e for e in EXECUTOR_STYLE if e in panel["series"]]
        order += [e for e in panel["series"] if e not in order]
        for executor in order:
            data = panel["series"][executor]
            colour, marker, label = EXECUTOR_STYLE.get(executor, ("black", "x", executor))
            points = [
                (n, s) for n, s in zip(workers, data["speedup"], strict=True) if s is not None
            ]
            if not points:
                continue
            one = data.get("per_task_1_worker_s")
            if one:
                label += f" (1 worker: {one * 1e3:.2f} ms/task)"
            xs, ss = zip(*points, strict=True)
            ys += ss
            ax.plot(xs, ss, marker=marker, color=colour, label=label, lw=1.8, ms=7)
            for x, s in points[1:]:  # the first point is 1 worker: 1.00x by definition
                ax.annotate(
                    f"{s:.2f}x",
                    (x, s),
                    textcoords="offset points",
                    xytext=LABEL_OFFSET.get(executor, (6, 4)),
                    fontsize=7.5,
                    color=colour,
                )
        ax.plot(workers, workers, color="#424242", ls="--", lw=1, label="ideal (speedup = workers)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(workers, [str(n) for n in workers])
        ticks = sorted({0.5, 1, *workers})
        ax.set_yticks(ticks, [f"{t:g}x" for t in ticks])
        ax.minorticks_off()
        ax.set_xlim(min(workers) / 1.3, top * 1.3)
        ax.set_ylim(min([0.5, *ys]) / 1.2, max([top, *ys]) * 1.3)
        ax.set_xlabel("workers (threads or processes)")
        ax.set_ylabel("speedup over the same executor with 1 worker")
        ax.set_title(
            f"{panel['grain']}: {panel['tasks']} tasks per batch, each a {panel['title']}",
            fontsize=10,
        )
        ax.grid(color="#e0e0e0", lw=0.5)
        ax.legend(fontsize=7.5, loc="upper left")
    fig.suptitle(
        "zuki scaling with worker count (bench_scaling.py)\n" + provenance(summary.get("run", {})),
        fontsize=10.5,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", nargs="?", type=Path, default=RESULTS / "summary.json")
    parser.add_argument("-o", "--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    summary = json.loads(args.summary.read_text())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    ratios_chart(summary, args.out_dir / "ratios.png")
    made.append("ratios.png")
    if scaling_chart(summary, args.out_dir / "scaling.png"):
        made.append("scaling.png")
    print(" ".join(made))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
