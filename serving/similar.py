"""Items like a given item: cosine of the model's item vectors, computed per request.

1,682 x d floats is a few microseconds of numpy, and it is always as fresh as the model, so
the precomputed ``similar_items`` table is only read when no model is loaded yet.

Example::

    picks = similar_items(model, "50", k=10, exclude=frozenset(), title=data.title)
    # None when the model does not know the item
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from serving.answers import Pick
from serving.ranking import best_rows
from serving.served_model import ServedModel


def similar_items(
    model: ServedModel,
    item_id: str,
    k: int,
    exclude: frozenset[str],
    title: Callable[[str], str],
) -> list[Pick] | None:
    """The ``k`` items most like ``item_id`` (never itself nor ``exclude``), or None."""
    row = model.item_row.get(item_id)
    if row is None:
        return None
    scores = model.unit @ model.unit[row]
    banned = [row, *(model.item_row[i] for i in exclude if i in model.item_row)]
    reason = f"similar to {title(item_id)}"
    rows = best_rows(scores, k, np.asarray(banned, np.intp))
    return [Pick(model.item_ids[r], float(scores[r]), reason, "online") for r in rows]


def from_table(
    rows: Sequence[tuple[str, float]],
    item_id: str,
    k: int,
    exclude: frozenset[str],
    title: Callable[[str], str],
) -> list[Pick]:
    """Picks from the precomputed ``similar_items`` rows of ``item_id``."""
    reason = f"similar to {title(item_id)}"
    kept = [(i, s) for i, s in rows if i not in exclude and i != item_id]
    return [Pick(i, s, reason, "offline") for i, s in kept[:k]]
