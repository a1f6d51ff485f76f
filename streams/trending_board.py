"""The worker's view of trending: the shares of the partitions it holds, merged when read.

Each share (:class:`~streams.trending.DecayedCounts`) lives in a changelog-backed table
under the key ``p<partition>``, and is written back at most every ``snapshot_s`` seconds
rather than on every event: trending is approximate by nature, so a crash may lose up to
that many seconds of counts, while per-user state stays exact. The merged rankings are
cached for ``refresh_s`` seconds, because merging thousands of items per recomputation
would cost more than the recomputation itself.

Example::

    board = TrendingBoard(table, lambda: DecayedCounts(3_600_000), assigned=lambda: {0, 1})
    board.record(partition, signal)          # while the signal's event is being processed
    board.top("tv", 20, exclude=set(state.seen))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, MutableMapping

from streams.signals import Signal
from streams.trending import OVERALL, DecayedCounts, merged_scores, top_of


class TrendingBoard:
    def __init__(
        self,
        shares: MutableMapping[str, DecayedCounts],
        make: Callable[[], DecayedCounts],
        assigned: Callable[[], Collection[int]],
        *,
        snapshot_s: float = 5.0,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shares, self.make, self.assigned = shares, make, assigned
        self.snapshot_s, self.refresh_s, self.clock = snapshot_s, refresh_s, clock
        self._written: dict[int, float] = {}
        self._cache: dict[str, tuple[float, list[tuple[str, float]]]] = {}

    @staticmethod
    def key(partition: int) -> str:
        return f"p{partition}"

    def share(self, partition: int) -> DecayedCounts:
        share = self.shares.get(self.key(partition))
        return self.make() if share is None else share

    def record(self, partition: int, signal: Signal) -> None:
        """Count ``signal``, writing the share to the table when it is new or due.

        Must run while ``signal``'s event is being processed: a Faust table sends the write
        to the changelog partition of the current event.
        """
        if signal.weight <= 0:
            return
        key = self.key(partition)
        share = self.shares.get(key)
        due = share is None
        if share is None:
            share = self.make()
        for item in signal.items:
            share.add(item, signal.device, signal.ts, signal.weight)
        now = self.clock()
        if due or now - self._written.get(partition, float("-inf")) >= self.snapshot_s:
            self._written[partition] = now
            # The table keeps this very object, so later events update it in place and
            # the next write only has to send it.
            self.shares[key] = share

    def _ranking(self, scope: str) -> list[tuple[str, float]]:
        now = self.clock()
        cached = self._cache.get(scope)
        if cached is not None and now - cached[0] < self.refresh_s:
            return cached[1]
        held = [self.shares.get(self.key(p)) for p in sorted(self.assigned())]
        ranking = merged_scores((s for s in held if s is not None), scope)
        self._cache[scope] = (now, ranking)
        return ranking

    def top(self, device: str | None, n: int, exclude: set[str]) -> list[tuple[str, float]]:
        """The ``n`` best unseen items: ``device``'s ranking, topped up from the overall one."""
        preferred = [self._ranking(device)] if device else []
        return top_of(preferred, self._ranking(OVERALL), n, exclude)
