"""Trending: exponentially decayed popularity per item, overall and per device, in event time.

An event of weight ``w`` at time ``ts`` adds ``w * 2 ** ((ts - origin) / half_life)`` to
its item's score. Scores are kept relative to ``origin``, so an update touches one number
instead of decaying every item; the score at time ``T`` is ``stored * 2 ** ((origin - T) /
half_life)``, the same factor for every item, so rankings never need ``T`` at all. When
exponents grow large the origin moves forward (:data:`REBASE_AFTER` half-lives).

Events are partitioned by user, so one :class:`DecayedCounts` holds one partition's share.
Because users are hashed over partitions, each share estimates the global ranking, and
:func:`merged_top` sums the shares a worker holds. That keeps trending partition-local (no
repartition hop, no cross-worker traffic) at the cost of a noisier ranking with many workers.

Example::

    counts = DecayedCounts(half_life_ms=3_600_000)
    counts.add("i9", "tv", ts=1_700_000_000_000, weight=1.0)
    merged_top([counts], device="tv", n=10, exclude=set())   # [("i9", 1.0)]
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

OVERALL = ""
"""Scope key of the all-devices counts."""
REBASE_AFTER = 60.0
"""Half-lives after the origin at which it moves: 2**60 keeps float64 exact enough."""


@dataclass(slots=True)
class DecayedCounts:
    """One partition's trending counts; bounded to ``cap`` items per scope and ``devices``
    device scopes (events from further devices count overall only)."""

    half_life_ms: float
    cap: int = 1000
    devices: int = 8
    origin: int = 0
    latest: int = 0
    """Newest event time seen; the "now" of displayed scores."""
    scopes: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, item: str, device: str, ts: int, weight: float) -> None:
        if not self.scopes:
            self.origin = ts
        if (ts - self.origin) / self.half_life_ms > REBASE_AFTER:
            self._rebase(ts)
        self.latest = max(self.latest, ts)
        increment = weight * 2.0 ** ((ts - self.origin) / self.half_life_ms)
        self._bump(OVERALL, item, increment)
        if device in self.scopes or len(self.scopes) <= self.devices:
            self._bump(device, item, increment)

    def _bump(self, scope: str, item: str, increment: float) -> None:
        scores = self.scopes.setdefault(scope, {})
        scores[item] = scores.get(item, 0.0) + increment
        if len(scores) > 2 * self.cap:  # prune in bulk: amortised O(1) per event
            kept = sorted(scores.items(), key=lambda pair: pair[1], reverse=True)[: self.cap]
            self.scopes[scope] = dict(kept)

    def _rebase(self, ts: int) -> None:
        factor = 2.0 ** ((self.origin - ts) / self.half_life_ms)
        for scores in self.scopes.values():
            for item in scores:
                scores[item] *= factor
        self.origin = ts

    def scores_at(self, scope: str, now: int) -> dict[str, float]:
        """Decayed scores of ``scope`` at event time ``now``."""
        factor = 2.0 ** ((self.origin - now) / self.half_life_ms)
        return {item: s * factor for item, s in self.scopes.get(scope, {}).items()}

    def to_bytes(self) -> bytes:
        wire: dict[str, Any] = {"h": self.half_life_ms, "cap": self.cap, "dev": self.devices}
        wire.update({"o": self.origin, "l": self.latest, "s": self.scopes})
        return json.dumps(wire, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> DecayedCounts:
        wire = json.loads(data)
        return cls(wire["h"], wire["cap"], wire["dev"], wire["o"], wire["l"], wire["s"])


def merged_scores(shares: Iterable[DecayedCounts], scope: str) -> list[tuple[str, float]]:
    """Every item of ``scope`` over all ``shares``, best first, at the newest event time."""
    shares = list(shares)
    now = max((s.latest for s in shares), default=0)
    total: dict[str, float] = {}
    for share in shares:
        for item, score in share.scores_at(scope, now).items():
            total[item] = total.get(item, 0.0) + score
    return sorted(total.items(), key=lambda pair: (-pair[1], pair[0]))


def merged_top(
    shares: Iterable[DecayedCounts], device: str | None, n: int, exclude: set[str]
) -> list[tuple[str, float]]:
    """The ``n`` best items not in ``exclude``: ``device``'s own ranking first, topped up
    from the overall one when the device has too few."""
    shares = list(shares)
    return top_of(
        [merged_scores(shares, device)] if device else [],
        merged_scores(shares, OVERALL),
        n,
        exclude,
    )


def top_of(
    preferred: list[list[tuple[str, float]]],
    overall: list[tuple[str, float]],
    n: int,
    exclude: set[str],
) -> list[tuple[str, float]]:
    """Pick ``n`` items from ranked lists in order, skipping ``exclude`` and repeats.

    A top-up item's score is capped at the score before it, so the set stays ordered.
    """
    picked: list[tuple[str, float]] = []
    taken = set(exclude)
    for ranking in [*preferred, overall]:
        for item, score in ranking:
            if len(picked) == n:
                return picked
            if item not in taken:
                taken.add(item)
                picked.append((item, min(score, picked[-1][1]) if picked else score))
    return picked
