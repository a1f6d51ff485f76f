"""One user's recommendation set from their state, the model in force and trending.

- No model yet, or nothing to go on (no interaction with an item the model knows, and a
  user the model does not know): trending for the user's device, ``source="trending"``,
  ``model_version=0``.
- Otherwise the user vector is the fold-in of their recent interactions, blended with the
  offline vector when the model knows the user (``blend_weight`` of it); a known user with
  no usable recent history gets the offline vector alone. Items are scored
  ``u . v_i + b_i``, seen items are excluded, and each item's reason names the interaction
  contributing most to its score. The user is assigned the nearest item cluster.

Example::

    recs = recommend("u1", state, holder.current, board.top, Tuning(top_n=20),
                     trigger_event_id=event_id, now=now_ms())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from schemas.events import RecommendationSet, RecommendedItem
from streams.model import LoadedModel
from streams.scoring import Interaction, score_many
from streams.state import UserState

TrendingSource = Callable[[str | None, int, set[str]], list[tuple[str, float]]]
"""(device, n, exclude) -> the n best trending items, best first, with their scores."""
VERBS = {"view": "watched", "click": "clicked"}
FROM_PROFILE = "from your viewing history"


@dataclass(frozen=True, slots=True)
class Tuning:
    top_n: int = 20
    fold_in_lambda: float = 10.0
    blend_weight: float = 0.5
    recency_half_life_ms: float = 7 * 24 * 3600 * 1000.0


def recommend(
    user_id: str,
    state: UserState,
    model: LoadedModel | None,
    trending: TrendingSource,
    tuning: Tuning,
    trigger_event_id: str | None,
    now: int,
) -> RecommendationSet:
    """One user's set (see :func:`recommend_many`)."""
    return recommend_many([(user_id, state, trigger_event_id)], model, trending, tuning, now)[0]


def recommend_many(
    requests: Sequence[tuple[str, UserState, str | None]],
    model: LoadedModel | None,
    trending: TrendingSource,
    tuning: Tuning,
    now: int,
) -> list[RecommendationSet]:
    """The sets of several users, for (user_id, state, trigger event id) requests; the
    model-based ones are computed together (:func:`~streams.scoring.score_many`)."""
    out: list[RecommendationSet | None] = [None] * len(requests)
    batch: list[int] = []
    histories: list[list[Interaction]] = []
    for i, (user_id, state, trigger) in enumerate(requests):
        known = model.user_row.get(user_id) if model is not None else None
        history = [r for r in state.recent if model is not None and r[0] in model.item_row]
        if model is None or (not history and known is None):
            out[i] = _trending(user_id, state, trending, tuning, trigger, now)
        else:
            batch.append(i)
            histories.append(history)
    if batch and model is not None:
        row = model.item_row
        scored = score_many(
            model,
            histories,
            [model.user_row.get(requests[i][0]) for i in batch],
            [[row[s] for s in requests[i][1].seen if s in row] for i in batch],
            top_n=tuning.top_n,
            lam=tuning.fold_in_lambda,
            blend=tuning.blend_weight,
            half_life_ms=tuning.recency_half_life_ms,
        )
        for i, history, result in zip(batch, histories, scored, strict=True):
            user_id, _, trigger = requests[i]
            items = tuple(
                RecommendedItem(model.item_ids[r], score, _reason(history, k))
                for r, score, k in zip(result.rows, result.scores, result.because, strict=True)
            )
            out[i] = RecommendationSet(
                user_id, items, "nearline", model.version, now, trigger, result.cluster
            )
    return [recs for recs in out if recs is not None]


def _reason(history: list[Interaction], index: int | None) -> str:
    if index is None:
        return FROM_PROFILE
    item, kind, _, _ = history[index]
    return f"because you {VERBS.get(kind, kind)} {item}"


def _trending(
    user_id: str,
    state: UserState,
    trending: TrendingSource,
    tuning: Tuning,
    trigger: str | None,
    now: int,
) -> RecommendationSet:
    device = state.session[1] if state.session else None
    items = tuple(
        RecommendedItem(item, score, f"trending on {device}" if device else "trending now")
        for item, score in trending(device, tuning.top_n, set(state.seen))
    )
    return RecommendationSet(user_id, items, "trending", 0, now, trigger)
