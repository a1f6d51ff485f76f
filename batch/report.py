"""A human-readable report of one training run: a markdown page and a PNG bar chart.

The chart puts the candidate beside the current model and, when given, a published
reference (LightFM's figures for the ua split), metric by metric.

Example::

    paths = write_report(Path("out"), candidate, current, verdict,
                         reference=PUBLISHED_UA, timings={"train": 2.1})
    paths.markdown.read_text()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from batch.evaluation import Metrics, Verdict

SHOWN = ("precision", "recall", "ndcg", "auc", "coverage")


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    chart: Path


def write_report(
    folder: Path,
    candidate: Metrics,
    current: Metrics | None = None,
    verdict: Verdict | None = None,
    reference: Mapping[str, float] | None = None,
    timings: Mapping[str, float] | None = None,
    title: str = "Offline model report",
) -> ReportFiles:
    """Write ``report.md`` and ``metrics.png`` into ``folder`` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    columns: dict[str, Mapping[str, float]] = {"candidate": candidate.as_dict()}
    if current is not None:
        columns["current"] = current.as_dict()
    if reference:
        columns["reference"] = reference
    chart = folder / "metrics.png"
    _chart(chart, columns, candidate.k)
    markdown = folder / "report.md"
    markdown.write_text(_markdown(title, columns, candidate, verdict, timings, chart.name))
    return ReportFiles(markdown, chart)


def _label(metric: str, k: int) -> str:
    return metric if metric == "auc" else f"{metric}@{k}"


def _markdown(
    title: str,
    columns: Mapping[str, Mapping[str, float]],
    candidate: Metrics,
    verdict: Verdict | None,
    timings: Mapping[str, float] | None,
    chart: str,
) -> str:
    lines = [f"# {title}", "", f"Evaluated users: {candidate.users}", ""]
    lines += ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for metric in SHOWN:
        cells = [f"{c[metric]:.4f}" if metric in c else "-" for c in columns.values()]
        lines.append(f"| {_label(metric, candidate.k)} | " + " | ".join(cells) + " |")
    if verdict is not None:
        lines += ["", f"## Gate: {'PASS' if verdict.passed else 'FAIL'}", ""]
        lines += [f"- {reason}" for reason in verdict.reasons]
    if timings:
        lines += ["", "## Timings", "", "| step | seconds |", "|---|---|"]
        lines += [f"| {step} | {seconds:.2f} |" for step, seconds in timings.items()]
    lines += ["", f"![metrics]({chart})", ""]
    return "\n".join(lines)


def _chart(path: Path, columns: Mapping[str, Mapping[str, float]], k: int) -> None:
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(SHOWN))
    width = 0.8 / len(columns)
    for index, (name, values) in enumerate(columns.items()):
        heights = [values.get(metric, np.nan) for metric in SHOWN]
        axes.bar(positions + index * width, heights, width, label=name)
    axes.set_xticks(positions + width * (len(columns) - 1) / 2)
    axes.set_xticklabels([_label(m, k) for m in SHOWN])
    axes.set_ylim(0, 1)
    axes.set_ylabel("value")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
