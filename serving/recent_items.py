"""Each user's recent items, from events POSTed to this replica: the online signals.

Deliberately simple: a replica only knows what it was sent itself, and forgets on restart.
The durable, shared view of a user's history is the nearline worker's (it reads every
event); this is what lets a replica react to the click it just received, before the
worker's next result set arrives. Bounded both ways: ``per_user`` items per user, and the
``users`` most recently active users.

Example::

    recent = RecentItems(per_user=20, users=100_000)
    recent.add("42", "50")
    recent.get("42")            # ("50",), newest first
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class RecentItems:
    """Newest-first item ids per user, bounded in items per user and in users."""

    def __init__(self, per_user: int = 20, users: int = 100_000) -> None:
        self._per_user = per_user
        self._users = users
        self._items: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user_id: str, item_id: str) -> None:
        with self._lock:
            old = self._items.pop(user_id, ())
            self._items[user_id] = (item_id, *(i for i in old if i != item_id))[: self._per_user]
            while len(self._items) > self._users:
                self._items.popitem(last=False)

    def get(self, user_id: str) -> tuple[str, ...]:
        # A tuple is replaced, never changed, so reading it needs no lock.
        return self._items.get(user_id, ())

    def __len__(self) -> int:
        return len(self._items)
