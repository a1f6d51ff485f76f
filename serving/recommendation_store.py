"""The latest result sets per user from the compacted ``recommendations`` topic, in memory.

Per user it keeps the newest nearline set and the newest offline set (by ``computed_at``).
The nearline set is only offered while it is the freshest of the two: an offline set
computed after it came from a newer model and supersedes it.

Only the topic reader writes (one thread); requests read. Each user's entry is an immutable
pair replaced in one dict assignment, so readers never see half an update.

Example::

    store = RecommendationStore()
    store.put(RecommendationSet(user_id="42", items=(...), source="nearline"))
    store.nearline("42")        # the set, unless an offline set computed later exists
"""

from __future__ import annotations

from typing import NamedTuple

from schemas.events import RecommendationSet


class _Entry(NamedTuple):
    nearline: RecommendationSet | None
    offline: RecommendationSet | None


_EMPTY = _Entry(None, None)


class RecommendationStore:
    """Newest nearline and offline :class:`RecommendationSet` per user."""

    def __init__(self) -> None:
        self._users: dict[str, _Entry] = {}
        self.caught_up = False
        """Set by the reader once it has read every partition to its end once."""

    def __len__(self) -> int:
        return len(self._users)

    def put(self, recs: RecommendationSet) -> bool:
        """Keep ``recs`` if it is newer than what the user has from its source; returns
        whether it was kept. Sources other than nearline and offline are ignored (the topic
        is theirs; serving never reads back its own answers)."""
        entry = self._users.get(recs.user_id, _EMPTY)
        if recs.source == "nearline":
            if entry.nearline is None or recs.computed_at >= entry.nearline.computed_at:
                self._users[recs.user_id] = entry._replace(nearline=recs)
                return True
        elif recs.source == "offline":
            if entry.offline is None or recs.computed_at >= entry.offline.computed_at:
                self._users[recs.user_id] = entry._replace(offline=recs)
                return True
        return False

    def remove(self, user_id: str) -> None:
        """A tombstone: compaction will drop the user's sets, so forget them now."""
        self._users.pop(user_id, None)

    def nearline(self, user_id: str) -> RecommendationSet | None:
        """The user's nearline set, if it is the freshest set the user has."""
        entry = self._users.get(user_id)
        if entry is None or entry.nearline is None:
            return None
        if entry.offline is not None and entry.offline.computed_at > entry.nearline.computed_at:
            return None
        return entry.nearline

    def offline(self, user_id: str) -> RecommendationSet | None:
        entry = self._users.get(user_id)
        return None if entry is None else entry.offline

    def has_any(self, user_id: str) -> bool:
        return user_id in self._users
