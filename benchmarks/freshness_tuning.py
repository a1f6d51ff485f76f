"""A validation sweep of the worker's knobs for the freshness experiment, never on the test.

The training ratings (before T) are split again at the same quantile: a model trained
before that earlier cut-off is walked over the ratings between it and T, exactly like the
test protocol. Then, greedily, one knob at a time, each time keeping the best value by
per-user hit-rate@10 (NDCG@10 breaking ties):

1. trending's half-life (trending is also what a user with nothing to go on is served);
2. the fold-in's ridge term, then its blend weight, then its recency half-life, each from
   the values chosen so far.

One seed only: the sweep is a guide, the test figures carry the seed spread.

Example::

    tuning, half_life_ms = sweep(ml, split, 0.8, 10, limits, weights, Tuning(top_n=10), print)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from batch.config import TrainConfig
from benchmarks.freshness_methods import offline_model, since_cutoff, worker_lists
from benchmarks.freshness_metrics import averages, scored
from benchmarks.freshness_protocol import Split, spread, steps, time_split
from benchmarks.freshness_replay import replay
from schemas import movielens
from streams.recommender import Tuning
from streams.signals import Weights
from streams.state import Limits

K = 10
HOUR_MS = 3_600_000.0
DAY_MS = 24 * HOUR_MS
LAMBDAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
RECENCY_DAYS = (1 / 24, 1.0, 7.0, 30.0)
TRENDING_MS = {
    "1 h": HOUR_MS,
    "1 day": DAY_MS,
    "7 days": 7 * DAY_MS,
    "30 days": 30 * DAY_MS,
    "none (to date)": 1e15,
}
"""A 1e15 ms half-life never decays within ML-100K's 7 months: popularity to date."""
Found = tuple[float, float, float, float]
"""Per-user hit-rate@10 and NDCG@10, all users; per-user hit-rate@10, known and new users."""


def sweep(
    ml: movielens.MovieLens,
    split: Split,
    quantile: float,
    per_user: int,
    limits: Limits,
    weights: Weights,
    default: Tuning,
    log: Callable[[str], Any],
) -> tuple[Tuning, float]:
    """The chosen fold-in tuning and trending half-life (ms), from validation only."""
    val = time_split(split.train, quantile)
    walk = spread(steps(val), per_user)
    log(
        f"\nvalidation: a model trained before {val.cutoff} (the {quantile:.0%} quantile of the "
        f"training ratings), {len(walk):,} steps of {len({s.user_id for s in walk})} users up "
        "to T, seed 0"
    )
    moments = replay(split.train, walk, TRENDING_MS, limits, K, weights=weights)
    config = TrainConfig(random_state=0, deterministic=True)
    model = offline_model(val.train, ml.items, ml.users, config)

    def measure(lists: Sequence[Sequence[str]]) -> Found:
        frame = scored(walk, lists, K)
        known, new = frame.loc[frame["known"]], frame.loc[~frame["known"]]
        return (
            averages(frame["user"].tolist(), frame["hit"].tolist())[1],
            averages(frame["user"].tolist(), frame["ndcg"].tolist())[1],
            averages(known["user"].tolist(), known["hit"].tolist())[1],
            averages(new["user"].tolist(), new["hit"].tolist())[1],
        )

    def show(label: str, found: Found) -> None:
        log(f"{label:<36}{found[0]:>12.4f}{found[1]:>14.4f}{found[2]:>10.4f}{found[3]:>10.4f}")

    log(f"{'setting':<36}{'HR@10/user':>12}{'NDCG@10/user':>14}{'HR known':>10}{'HR new':>10}")
    trending: dict[str, Found] = {}
    for label in TRENDING_MS:
        trending[label] = measure([m.boards[label] for m in moments])
        show(f"trending half-life {label}", trending[label])
    board = max(trending, key=lambda label: trending[label][:2])
    fallback = [list(m.boards[board]) for m in moments]

    def best(name: str, values: Sequence[float], make: Callable[[float], Tuning]) -> Tuning:
        found: dict[float, Found] = {}
        for value in values:
            lists, _ = worker_lists(model, moments, make(value), since_cutoff(val.cutoff), fallback)
            found[value] = measure(lists)
            show(f"fold-in {name} = {value:.4g}", found[value])
        return make(max(values, key=lambda v: found[v][:2]))

    tuning = best("lambda", LAMBDAS, lambda v: replace(default, fold_in_lambda=v))
    tuning = best("blend", BLENDS, lambda v: replace(tuning, blend_weight=v))
    tuning = best(
        "recency half-life (days)",
        RECENCY_DAYS,
        lambda v: replace(tuning, recency_half_life_ms=v * DAY_MS),
    )
    log(f"chosen: trending half-life {board}; {tuning}")
    return tuning, TRENDING_MS[board]
