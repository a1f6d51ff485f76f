"""The freshness chart: per-method bars of hit-rate@10 and NDCG@10, and hit-rate@10 against
the number of events since training.

Example::

    bars = [Bar("(a) stale", 0.09, 0.003, 0.045, 0.002), ...]
    draw(Path("docs/freshness.png"), "title", [("All users", bars)], curve, note="...")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    hit: float
    hit_sd: float
    ndcg: float
    ndcg_sd: float


@dataclass(frozen=True, slots=True)
class Curve:
    title: str
    buckets: Sequence[str]
    """x tick labels (e.g. "0", "1-9"), with their user counts."""
    values: Mapping[str, Sequence[float]]
    """Per method, one value per bucket."""


def draw(
    path: Path,
    title: str,
    panels: Sequence[tuple[str, Sequence[Bar]]],
    curve: Curve,
    note: str = "",
) -> None:
    """Write a PNG: one bar panel per ``panels`` entry, then the curve panel; ``note`` goes
    under the panels."""
    figure, axes = plt.subplots(
        1, len(panels) + 1, figsize=(6 * len(panels) + 5, 5.6), constrained_layout=True
    )
    for axis, (name, bars) in zip(axes, panels, strict=False):
        _bars(axis, name, bars)
    line = axes[-1]
    for label, values in curve.values.items():
        line.plot(range(len(curve.buckets)), values, marker="o", label=label)
    line.set_xticks(range(len(curve.buckets)), list(curve.buckets))
    line.set_xlabel("events of the user since training (before the target)")
    line.set_ylabel("hit-rate@10 (per-user average)")
    line.set_title(curve.title, fontsize=10)
    line.set_ylim(bottom=0)
    line.grid(alpha=0.3)
    line.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    if note:
        figure.supxlabel(note, fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axis: Axes, name: str, bars: Sequence[Bar]) -> None:
    width = 0.38
    x = range(len(bars))
    for shift, metric, colour in (
        (-width / 2, "hit", "tab:blue"),
        (width / 2, "ndcg", "tab:orange"),
    ):
        values = [getattr(b, metric) for b in bars]
        spreads = [getattr(b, f"{metric}_sd") for b in bars]
        drawn = axis.bar(
            [i + shift for i in x],
            values,
            width,
            yerr=spreads,
            capsize=3,
            color=colour,
            label="hit-rate@10" if metric == "hit" else "NDCG@10",
        )
        axis.bar_label(drawn, labels=[f"{v:.3f}" for v in values], fontsize=7, padding=2)
    axis.set_xticks(list(x), [b.label for b in bars], rotation=20, ha="right", fontsize=8)
    axis.set_title(name, fontsize=10)
    axis.set_ylabel("per-user average (mean ± sd over seeds)")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
