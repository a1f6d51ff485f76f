"""The offline model of the freshness experiment, and each method's top-n at a moment.

The model is trained by the batch role (:func:`batch.training.train` on
:func:`batch.interactions.to_interactions` of the training ratings, packaged with
:func:`batch.packaging.to_artifact`) and prepared as the worker prepares it
(:meth:`streams.model.LoadedModel.of`). Its users are those with a training rating: a user
who first rates after the cut-off did not exist when the model was trained. Its items are the
whole catalogue, as the items table would hold them (unrated ones get vectors from their
genre and year features).

The model-based lists come from the worker's :func:`streams.recommender.recommend_many`,
given the user's state with its recent interactions chosen per method:

- **stale** (``recent=()``): with nothing to fold in, the worker scores a known user with
  the offline vector alone, whatever the blend weight;
- **fold-in** (interactions since the cut-off): the worker's blend of the offline vector and
  the fold-in; a new user gets the fold-in alone;
- **worker state** (the state as is): what a worker that ran before the cut-off too would
  hold, its last 50 interactions whatever their time.

When the worker would serve trending (no model vector and no usable history), the caller
says what to serve instead: the worker's trending at that moment, or popularity.

Example::

    model = offline_model(split.train, ml.items, ml.users, TrainConfig(random_state=0))
    lists, fell_back = worker_lists(model, moments, Tuning(top_n=10),
                                    since_cutoff(split.cutoff),
                                    fallback=[m.boards["trending"] for m in moments])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from batch.config import TrainConfig
from batch.features import FeatureSpace
from batch.interactions import to_interactions
from batch.packaging import to_artifact
from batch.training import train
from benchmarks.freshness_replay import Moment
from streams.foldin import fold_in, recency_weights
from streams.model import LoadedModel
from streams.recommender import Tuning, recommend_many
from streams.state import UserState
from streams.trending import top_of

History = Callable[[UserState], UserState]
CHUNK = 512
"""Users per recommend_many call: the worker stacks the users of one tick the same way."""


def as_events(ratings: pd.DataFrame) -> pd.DataFrame:
    """Ratings as the snapshot's event frame: every rating a view, no watch time."""
    return pd.DataFrame(
        {
            "user_id": ratings["user_id"],
            "item_id": ratings["item_id"],
            "event_type": "view",
            "ts": ratings["ts"] * 1000,
            "duration_ms": np.zeros(len(ratings), dtype=np.int64),
            "rating": ratings["rating"],
        }
    )


def offline_model(
    train_ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, config: TrainConfig
) -> LoadedModel:
    """Train on ``train_ratings`` with the batch role's code; load it as the worker does."""
    events = as_events(train_ratings)
    # A users table as of T. FeatureSpace.build now drops users without events itself (no
    # user features), so passing every user gives the same 751 model users.
    existing = users.loc[users["user_id"].isin(set(train_ratings["user_id"]))]
    space = FeatureSpace.build(events, items, existing, config)
    model = train(to_interactions(events, space, config), space, config, progress=False)
    cutoff = {"max_event_ts": int(events["ts"].max())}
    artifact = to_artifact(
        model, version=1, config=config.model_dump(mode="json"), cutoff=cutoff, metrics={}
    )
    return LoadedModel.of(artifact)


def stale(state: UserState) -> UserState:
    return dataclasses.replace(state, recent=())


def since_cutoff(cutoff_s: int) -> History:
    """Keep the recent interactions at or after the cut-off: the events since training."""
    cutoff_ms = cutoff_s * 1000

    def keep(state: UserState) -> UserState:
        return dataclasses.replace(
            state, recent=tuple(r for r in state.recent if r[2] >= cutoff_ms)
        )

    return keep


def worker_state(state: UserState) -> UserState:
    return state


def worker_lists(
    model: LoadedModel,
    moments: Sequence[Moment],
    tuning: Tuning,
    history: History,
    fallback: Sequence[Sequence[str]],
) -> tuple[list[list[str]], list[bool]]:
    """Per moment, the worker's top ``tuning.top_n`` item ids and whether it fell back."""
    lists: list[list[str]] = []
    fell_back: list[bool] = []
    for start in range(0, len(moments), CHUNK):
        chunk = moments[start : start + CHUNK]
        requests = [(m.step.user_id, history(m.state), None) for m in chunk]
        # The trending source is only asked for users with nothing to go on; ``fallback``
        # (computed at the same moment with the same exclusions) takes its place.
        sets = recommend_many(requests, model, lambda device, n, exclude: [], tuning, now=0)
        for offset, recs in enumerate(sets):
            trending = recs.source == "trending"
            chosen = fallback[start + offset] if trending else [i.item_id for i in recs.items]
            lists.append(list(chosen)[: tuning.top_n])
            fell_back.append(trending)
    return lists, fell_back


def popularity(train_ratings: pd.DataFrame) -> list[tuple[str, float]]:
    """Items by their number of training ratings, most first (ties: by id)."""
    counts = train_ratings.groupby("item_id").size()
    return sorted(((str(i), float(c)) for i, c in counts.items()), key=lambda p: (-p[1], p[0]))


def popularity_lists(
    ranking: list[tuple[str, float]], moments: Sequence[Moment], n: int
) -> list[list[str]]:
    """Per moment, the n most popular items the user has not seen (the worker's top_of)."""
    return [[i for i, _ in top_of([], ranking, n, set(m.state.seen))] for m in moments]


def vector_lengths(
    model: LoadedModel, moments: Sequence[Moment], tuning: Tuning, history: History, least: int
) -> float:
    """Median length of the fold-in vector over the moments whose ``history`` holds at least
    ``least`` usable interactions, by the worker's one-user maths (:mod:`streams.foldin`)."""
    lengths = []
    for moment in moments:
        recent = [r for r in history(moment.state).recent if r[0] in model.item_row]
        if len(recent) < least:
            continue
        rows = [model.item_row[item] for item, _, _, _ in recent]
        ts = np.array([t for _, _, t, _ in recent], np.float64)
        weights = np.array([w for _, _, _, w in recent]) * recency_weights(
            ts, tuning.recency_half_life_ms
        )
        targets = np.full(len(rows), model.target)
        fold = fold_in(
            model.items[rows], targets, weights, tuning.fold_in_lambda, model.biases[rows]
        )
        lengths.append(float(np.linalg.norm(fold.vector)))
    return float(np.median(lengths)) if lengths else float("nan")
