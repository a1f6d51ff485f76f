"""Event → recommendations latency: when does a set that accounts for an event arrive?

The worker recomputes a user's set once per burst of their events, and the set names the
burst's last event as its trigger. A user's events are applied in the order they were
sent (one partition per user), so a set triggered by event *e* covers *e* and every
earlier event of that user still waiting. An event's latency is the time from handing it
to the producer to the arrival of the first set that covers it.

Example::

    >>> tracker = CoverageTracker()
    >>> tracker.sent("u1", "e1", at=10.0); tracker.sent("u1", "e2", at=10.5)
    >>> tracker.arrived("u1", "e2", at=10.6)
    2
    >>> [round(x, 3) for x in tracker.latencies]
    [0.6, 0.1]
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque

import numpy as np


class CoverageTracker:
    """Sent events waiting for a set, per user; thread-safe (sender and reader threads)."""

    def __init__(self) -> None:
        self._pending: dict[str, deque[tuple[str, float]]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.latencies: list[float] = []
        """Seconds from send to covering set, one per covered event, in cover order."""
        self.covered_by_user: dict[str, int] = defaultdict(int)
        self.sent_count = 0
        self.sets = 0
        """Sets that covered at least one event."""

    def sent(self, user: str, event_id: str, at: float) -> None:
        with self._lock:
            self._pending[user].append((event_id, at))
            self.sent_count += 1

    def arrived(self, user: str, trigger: str | None, at: float) -> int:
        """A set for ``user`` triggered by ``trigger`` arrived; return the events it covers.

        A set whose trigger is not waiting (an offline set, a republished one, another
        run's event) covers nothing.
        """
        with self._lock:
            queue = self._pending.get(user)
            if not queue or trigger is None:
                return 0
            ids = [event_id for event_id, _ in queue]
            if trigger not in ids:
                return 0
            count = ids.index(trigger) + 1
            for _ in range(count):
                _, sent_at = queue.popleft()
                self.latencies.append(at - sent_at)
            self.covered_by_user[user] += count
            self.sets += 1
            return count

    @property
    def covered(self) -> int:
        return len(self.latencies)


def percentiles(values: list[float], *qs: float) -> tuple[float, ...]:
    """The ``qs`` percentiles of ``values`` (linear interpolation); NaN for no values."""
    if not values:
        return tuple(float("nan") for _ in qs)
    return tuple(float(v) for v in np.percentile(np.asarray(values), qs))
