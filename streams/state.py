"""Per-user state: recent interactions, counts, session, seen items, and what was applied.

Updates are idempotent. :func:`applied` returns ``None`` for an event that is already in
the state, recognised two ways:

- **by source offset.** The state keeps the highest offset it applied from each event
  topic. All of a user's events sit in one partition of each topic (keyed by user_id,
  co-partitioned), and a partition is processed in offset order, so an offset at or below
  that mark was applied. This makes Kafka redelivery exact however long the replay: after a
  crash, the state changelog and the committed source offsets are not written atomically
  (at-least-once), so the worker replays everything since the last commit, and part of it
  may already be in the changelog.
- **by event id.** A client that re-sends an event produces the same ``event_id`` at a new
  offset. The last ``Limits.event_ids`` ids (64-bit digests) are kept; a re-send arriving
  after that many newer events of the same user is counted again. Event time cannot stand in
  for the ring: events of the three topics interleave differently on every replay, and
  late events are legitimate.

Memory is bounded by :class:`Limits`. The table holds the compact JSON bytes of
:meth:`UserState.to_bytes` (about 1-5 KB for an active user); the changelog holds the same.

Example::

    state = UserState()
    state = applied(state, signal, offset=41, limits=Limits())   # None if a duplicate
    UserState.from_bytes(state.to_bytes()) == state               # True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from streams.signals import KINDS, Signal

DIGEST_CHARS = 16
Interaction = tuple[str, str, int, float]
"""(item_id, kind, ts, weight): kind is ``"click"`` or ``"view"``."""


@dataclass(frozen=True, slots=True)
class Limits:
    recent: int = 50
    seen: int = 500
    event_ids: int = 64


@dataclass(frozen=True, slots=True)
class UserState:
    counts: tuple[int, ...] = (0, 0, 0)
    """Events applied, per kind in :data:`~streams.signals.KINDS` order (click, browse, view)."""
    session: tuple[str, str, int] | None = None
    """(session_id, device, last seen ts) of the newest session."""
    recent: tuple[Interaction, ...] = ()
    """Newest last; at most ``Limits.recent``."""
    seen: tuple[str, ...] = ()
    """Items viewed or clicked, each once, most recently seen last."""
    event_ids: str = ""
    """Digests of the newest event ids, :data:`DIGEST_CHARS` hex characters each."""
    offsets: tuple[int, ...] = field(default=(-1, -1, -1))
    """Highest applied source offset per kind (-1: none)."""

    def count(self, kind: str) -> int:
        return self.counts[KINDS.index(kind)]

    def to_bytes(self) -> bytes:
        # Columns and joined strings rather than lists of small lists: the state is encoded
        # once per burst and JSON's encoder is much faster on a few long strings.
        items = [r[0] for r in self.recent]
        wire: dict[str, Any] = {
            "c": self.counts,
            "s": self.session,
            "r": [_joined(items), "".join(r[1][0] for r in self.recent)],
            "t": [r[2] for r in self.recent],
            "w": [r[3] for r in self.recent],
            "seen": _joined(self.seen),
            "ids": self.event_ids,
            "o": self.offsets,
        }
        return json.dumps(wire, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> UserState:
        wire = json.loads(data)
        session = wire["s"]
        items, kinds = wire["r"]
        return cls(
            counts=tuple(wire["c"]),
            session=None if session is None else (session[0], session[1], session[2]),
            recent=tuple(
                zip(
                    _split(items),
                    (KIND_OF_LETTER[k] for k in kinds),
                    wire["t"],
                    wire["w"],
                    strict=True,
                )
            ),
            seen=_split(wire["seen"]),
            event_ids=wire["ids"],
            offsets=tuple(wire["o"]),
        )


SEPARATOR = "|"
"""Joins item ids on the wire (a character JSON need not escape); an id containing it makes
that column a list instead."""
KIND_OF_LETTER = {"c": "click", "v": "view", "b": "browse"}


def _joined(items: tuple[str, ...] | list[str]) -> str | list[str]:
    joined = SEPARATOR.join(items)
    if items and joined.count(SEPARATOR) != len(items) - 1:  # an id contains the separator
        return list(items)
    return joined


def _split(wire: str | list[str]) -> tuple[str, ...]:
    if isinstance(wire, list):
        return tuple(wire)
    return tuple(wire.split(SEPARATOR)) if wire else ()


def digest(event_id: str) -> str:
    """64-bit digest of an event id: uniform whatever the UUID version (v1 ids share
    their leading time bits, so a prefix would not do)."""
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_CHARS // 2).hexdigest()


def _in_ring(ring: str, token: str) -> bool:
    at = ring.find(token)
    while at >= 0:
        if at % DIGEST_CHARS == 0:  # a match straddling two digests is not a match
            return True
        at = ring.find(token, at + 1)
    return False


def is_duplicate(state: UserState, signal: Signal, offset: int) -> bool:
    """Whether ``signal`` (read at ``offset``, -1 if unknown) is already applied."""
    if 0 <= offset <= state.offsets[signal.kind_index]:
        return True
    return _in_ring(state.event_ids, digest(signal.event_id))


def applied(state: UserState, signal: Signal, offset: int, limits: Limits) -> UserState | None:
    """``state`` with ``signal`` applied, or None if it was applied before."""
    if is_duplicate(state, signal, offset):
        return None
    kind = signal.kind_index
    counts = list(state.counts)
    counts[kind] += 1
    offsets = list(state.offsets)
    offsets[kind] = max(offsets[kind], offset)
    ring = (state.event_ids + digest(signal.event_id))[-limits.event_ids * DIGEST_CHARS :]
    recent, seen = state.recent, state.seen
    if signal.weight > 0:
        new = tuple(
            (item, signal.kind, signal.ts, round(signal.weight, 4)) for item in signal.items
        )
        recent = (recent + new)[-limits.recent :]
        if any(item in seen for item in signal.items):  # seen again: move it to the end
            fresh = set(signal.items)
            seen = tuple(i for i in seen if i not in fresh)
        seen = (seen + signal.items)[-limits.seen :]
    return UserState(
        counts=tuple(counts),
        session=_session_after(state.session, signal),
        recent=recent,
        seen=seen,
        event_ids=ring,
        offsets=tuple(offsets),
    )


def _session_after(
    session: tuple[str, str, int] | None, signal: Signal
) -> tuple[str, str, int] | None:
    if session is None or signal.session_id != session[0]:
        # A late event of an older session must not replace the current one.
        if session is not None and signal.ts < session[2]:
            return session
        return (signal.session_id, signal.device, signal.ts)
    return (session[0], signal.device, max(session[2], signal.ts))
