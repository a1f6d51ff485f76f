"""The candidate sources, each a function of one request's :class:`Inputs`.

Each returns a :class:`Candidates` (its source, the model version behind it and its picks,
best first, produced lazily so that only as many are built as are taken), or None when it
has nothing for this request. :mod:`serving.recommender` tries them in order.

Example::

    found = nearline(inputs)
    if found is not None:
        first = next(iter(found.picks))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from schemas.events import RecommendationSet, RecommendedItem
from serving.answers import Pick, Query
from serving.item_data import ItemData
from serving.ranking import FOLD_IN_MAX, fold_in, ranked
from serving.recommendation_store import RecommendationStore
from serving.rules import Rules
from serving.served_model import ServedModel


class Inputs(NamedTuple):
    """Everything one request sees, read once at its start."""

    query: Query
    model: ServedModel | None
    data: ItemData
    store: RecommendationStore
    recent: tuple[str, ...]
    rules: Rules
    want: int
    offline_rows: Sequence[RecommendedItem] | None = None
    """The user's offline list read from PostgreSQL, when the request looked it up."""


class Candidates(NamedTuple):
    source: str
    model_version: int
    picks: Iterable[Pick]


def _from_set(recs: RecommendationSet, default_reason: str) -> Candidates:
    picks = (Pick(i.item_id, i.score, i.reason or default_reason, recs.source) for i in recs.items)
    return Candidates(recs.source, recs.model_version, picks)


def nearline(inputs: Inputs) -> Candidates | None:
    """The worker's set, while it is the freshest set of the user."""
    recs = inputs.store.nearline(inputs.query.user_id)
    return None if recs is None else _from_set(recs, "updated from your latest activity")


def _model_rows(inputs: Inputs, model: ServedModel, scores: np.ndarray) -> list[int]:
    """The best ``want`` rows for ``scores`` that the rules allow."""
    item_row = model.item_row
    banned = np.array([item_row[i] for i in inputs.rules.banned if i in item_row], np.intp)
    ids, allows = model.item_ids, inputs.rules.allows
    return ranked(scores, inputs.want, banned, lambda r: allows(ids[r]))


def online_fold_in(inputs: Inputs) -> Candidates | None:
    """Scores from the user's recent items (blended with their trained vector if known)."""
    model = inputs.model
    if model is None or not inputs.recent:
        return None
    # Weights halve per item: beyond the newest few dozen an item no longer counts.
    item_row = model.item_row
    recent = [i for i in inputs.recent if i in item_row][:FOLD_IN_MAX]
    if not recent:
        return None
    fold = fold_in(model, np.array([item_row[i] for i in recent], np.intp))
    vector = fold.vector
    trained = model.user_vector(inputs.query.user_id)
    if trained is not None:
        vector = 0.5 * (vector + trained)
    scores = np.dot(model.vectors, vector) + model.biases
    rows = _model_rows(inputs, model, scores)
    # Reasons for all rows in one matrix product: per row it would cost more than ranking.
    # One recent item is every row's reason: no numpy call at all.
    if len(recent) == 1 or not rows:
        strongest = [0] * len(rows)
    else:
        strongest = fold.strongest(model.vectors[rows]).tolist()
    title, ids = inputs.data.title, model.item_ids
    reasons: dict[int, str] = {}  # one string per recent item, however many rows it explains
    picks = []
    for row, score, i in zip(rows, scores[rows].tolist(), strongest, strict=True):
        reason = reasons.get(i)
        if reason is None:
            reason = reasons[i] = f"because you watched {title(recent[i])}"
        picks.append(Pick(ids[row], score, reason, "online"))
    return Candidates("online", model.version, picks)


def offline(inputs: Inputs) -> Candidates | None:
    """The batch top-N: from the topic, else the rows the request read from PostgreSQL."""
    recs = inputs.store.offline(inputs.query.user_id)
    if recs is not None:
        return _from_set(recs, "picked for you")
    if not inputs.offline_rows:
        return None
    title = inputs.data.title
    picks = (
        # The table's reason holds the id of the seen item most like the recommended one.
        Pick(r.item_id, r.score, f"because you watched {title(r.reason)}", "offline")
        if r.reason
        else Pick(r.item_id, r.score, "picked for you", "offline")
        for r in inputs.offline_rows
    )
    return Candidates("offline", 0, picks)


def online_profile(inputs: Inputs) -> Candidates | None:
    """A user the model was trained on, scored with their trained vector alone."""
    model = inputs.model
    vector = None if model is None else model.user_vector(inputs.query.user_id)
    if model is None or vector is None:
        return None
    scores = np.dot(model.vectors, vector) + model.biases
    rows, ids = _model_rows(inputs, model, scores), model.item_ids
    picks = [
        Pick(ids[row], score, "from your viewing history", "online")
        for row, score in zip(rows, scores[rows].tolist(), strict=True)
    ]
    return Candidates("online", model.version, picks)


def trending(inputs: Inputs) -> Candidates | None:
    """Most viewed items in the trending window (event store), loaded in memory."""
    if not inputs.data.popular:
        return None
    device = inputs.query.device
    reason = f"popular on {device}" if device in inputs.data.device_share else "popular now"
    picks = (Pick(item, count, reason, "trending") for item, count in inputs.data.popular)
    return Candidates("trending", 0, picks)


def fallback(inputs: Inputs) -> Candidates | None:
    """The model's item biases: what the model thinks everyone likes."""
    model = inputs.model
    if model is None:
        return None
    picks = (
        Pick(model.item_ids[row], float(model.biases[row]), "popular with everyone", "fallback")
        for row in model.by_bias
    )
    return Candidates("fallback", model.version, picks)


STEPS = (nearline, online_fold_in, offline, online_profile, trending, fallback)
"""The order candidates are tried in; later steps only fill what earlier ones left."""
