"""Producing a stream of event records at a bounded rate, with a progress bar.

Example::

    with EventProducer(kafka, catalogue) as producer:
        sent = replay(producer, "ViewEvent", records, total=len(frame), max_rate=2000)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from tqdm import tqdm

from schemas.producer import EventProducer


class RateLimiter:
    """Paces calls to at most ``rate`` per second on average (no limit when None).

    It sleeps only when ahead of schedule, in slices of at least 1 ms, so a high rate costs
    almost nothing and a low one is accurate.
    """

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.start = time.monotonic()
        self.count = 0

    def wait(self) -> None:
        if not self.interval:
            return
        self.count += 1
        ahead = self.start + self.count * self.interval - time.monotonic()
        if ahead > 0.001:
            time.sleep(ahead)


def replay(
    producer: EventProducer,
    schema: str,
    records: Iterable[Mapping[str, Any]],
    *,
    total: int | None = None,
    max_rate: float | None = None,
    validate: bool = False,
    show_progress: bool = True,
) -> int:
    """Send every record as a ``schema`` event, then flush; return how many were sent."""
    limiter = RateLimiter(max_rate)
    sent = 0
    with tqdm(
        total=total,
        unit="ev",
        desc=f"replay {schema}",
        disable=not show_progress,
        mininterval=0.5,
        smoothing=0.1,
    ) as bar:
        for record in records:
            limiter.wait()
            producer.send(schema, record, validate=validate)
            sent += 1
            if sent % 1000 == 0:
                bar.update(1000)
        bar.update(sent % 1000)
        producer.flush()
    return sent
