"""Step 6 of the demo: the closing figures, one line each.

Example::

    >>> s = Summary(run_id="demo-1", history_events=80000, history_stored=80000,
    ...             model_version=1, metrics={"precision@10": 0.2, "auc": 0.9},
    ...             holdout="recent", live_events=3000, live_s=10.0, rate=300,
    ...             covered=3000, sets=900, latencies=[0.02, 0.03],
    ...             serve=[0.002, 0.004], wall_s=70.0)
    >>> print("\\n".join(s.lines()[2:4]))
      live events     3,000 in 10.0 s: 300 events/s (asked 300/s)
      event → recs    p50 25 ms, p99 30 ms (3,000 of 3,000 events covered by 900 sets)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from deploy.demo.coverage import percentiles


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


@dataclass
class Summary:
    run_id: str
    history_events: int
    history_stored: int
    model_version: int
    metrics: dict[str, float]
    holdout: str
    live_events: int
    live_s: float
    rate: float
    covered: int
    sets: int
    latencies: list[float]
    serve: list[float]
    wall_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.live_events / self.live_s if self.live_s else 0.0

    def lines(self) -> list[str]:
        e50, e99 = percentiles(self.latencies, 50, 99)
        s50, s99 = percentiles(self.serve, 50, 99)
        quality = "  ".join(
            f"{name} {value:.3f}"
            for name, value in self.metrics.items()
            if not name.startswith("lightfm_protocol_")
        )
        lines = [
            f"nearline demo {self.run_id}: summary",
            f"  history         {self.history_events:,} events replayed, "
            f"{self.history_stored:,} stored in PostgreSQL",
            f"  live events     {self.live_events:,} in {self.live_s:.1f} s: "
            f"{self.events_per_s:,.0f} events/s (asked {self.rate:,.0f}/s)",
            f"  event → recs    p50 {_ms(e50)}, p99 {_ms(e99)} ({self.covered:,} of "
            f"{self.live_events:,} events covered by {self.sets:,} sets)",
            f"  serve           p50 {_ms(s50)}, p99 {_ms(s99)} ({len(self.serve):,} requests)",
            f"  model           v{self.model_version}",
            f"  quality         {quality} (holdout: {self.holdout})",
            f"  wall time       {self.wall_s:.0f} s",
        ]
        return lines + [f"  note            {note}" for note in self.notes]
