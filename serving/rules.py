"""Business rules and the context re-rank applied to every list, whatever its source.

- exclusions: ``?exclude=`` and the items the user has already interacted with (the
  request's ``recent`` plus events POSTed to this replica);
- filters: ``?genre=`` keeps items whose metadata has that genre;
- device re-rank: items watched more on the request's device move up, by
  ``device_weight`` (0 keeps the order). Each item's position score ``1 - i/n`` is blended
  with its share of that device's views; the sort is stable, so ties keep their order.

Example::

    rules = Rules(banned=frozenset({"50"}), genre="action", data=data)
    kept = [p for p in picks if rules.allows(p.item_id)]
    final = rerank_for_device(kept, "tv", data, weight=0.2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serving.answers import Pick
from serving.item_data import ItemData


@dataclass(frozen=True, slots=True)
class Rules:
    banned: frozenset[str]
    genre: str | None
    data: ItemData

    def allows(self, item_id: str) -> bool:
        if item_id in self.banned:
            return False
        return self.genre is None or self.data.has_genre(item_id, self.genre)


def rerank_for_device(
    picks: Sequence[Pick], device: str | None, data: ItemData, weight: float
) -> list[Pick]:
    """``picks`` re-ordered for ``device`` (unchanged without views on that device)."""
    shares = data.device_share.get(device) if device else None
    if not shares or weight <= 0 or len(picks) < 2:
        return list(picks)
    n = len(picks)
    keyed = [
        ((1.0 - weight) * (1.0 - i / n) + weight * shares.get(p.item_id, 0.0), -i, p)
        for i, p in enumerate(picks)
    ]
    keyed.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [p for _, _, p in keyed]
