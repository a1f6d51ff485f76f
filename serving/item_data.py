"""The "data" of the online computation: item metadata and popularity, held in memory.

Loaded from PostgreSQL at start and refreshed periodically (:mod:`serving.database_reader`),
then swapped in as one immutable :class:`ItemData`. Requests never wait for the database
for it, so a database outage leaves the last loaded copy serving.

Example::

    data = ItemData.build(items=[("50", "Star Wars", ("Action", "Sci-Fi"))],
                          views=[("50", "tv", 120)])
    data.popular[:3]            # (("50", 120.0),)
    data.has_genre("50", "action")
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ItemData:
    """Titles, genres (lower-cased) and view counts; ``loaded`` is False until the first
    successful load."""

    titles: Mapping[str, str] = field(default_factory=dict)
    genres: Mapping[str, frozenset[str]] = field(default_factory=dict)
    popular: tuple[tuple[str, float], ...] = ()
    """(item id, views in the trending window), most viewed first."""
    device_share: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """device -> item -> views on that device / the device's most viewed item's (0..1]."""
    known_genres: frozenset[str] = frozenset()
    loaded: bool = False
    loaded_at: float = 0.0

    @classmethod
    def build(
        cls,
        items: Iterable[tuple[str, str, Iterable[str]]],
        views: Iterable[tuple[str, str, int]],
    ) -> ItemData:
        """From (item id, title, genres) rows and (item id, device, views) counts."""
        titles: dict[str, str] = {}
        genres: dict[str, frozenset[str]] = {}
        for item_id, title, item_genres in items:
            titles[item_id] = title
            genres[item_id] = frozenset(g.lower() for g in item_genres)
        totals: dict[str, float] = defaultdict(float)
        per_device: dict[str, dict[str, float]] = defaultdict(dict)
        for item_id, device, count in views:
            totals[item_id] += count
            per_device[device][item_id] = float(count)
        shares = {}
        for device, counts in per_device.items():
            top = max(counts.values())
            shares[device] = {item: n / top for item, n in counts.items()}
        popular = tuple(sorted(totals.items(), key=lambda pair: (-pair[1], pair[0])))
        return cls(
            titles=titles,
            genres=genres,
            popular=popular,
            device_share=shares,
            known_genres=frozenset(g for gs in genres.values() for g in gs),
            loaded=True,
            loaded_at=time.time(),
        )

    def title(self, item_id: str) -> str:
        """The title to show in a reason, or the id when the title is unknown."""
        return self.titles.get(item_id, item_id)

    def has_genre(self, item_id: str, genre: str) -> bool:
        return genre in self.genres.get(item_id, ())


class DataSlot:
    """The :class:`ItemData` in force; replaced whole by the refresher."""

    def __init__(self) -> None:
        self.current = ItemData()
        self.failures = 0
        self.last_error: str | None = None
