"""Freshness on ML-100K: does the nearline fold-in beat the stale offline model? (issue #7)

A model is trained on every rating before a time cut-off T; each user's ratings after T
are then predicted one step at a time (:mod:`benchmarks.freshness_protocol`), scored by
hit-rate@10 and NDCG@10 of the next event (:mod:`benchmarks.freshness_metrics`), for:

- (a) the stale offline model alone (users it does not know: training-time popularity);
- (b) the offline model plus the worker's fold-in of the events since training, and (b')
  the same from the worker's whole recent history (a worker that also ran before T);
- (c) the worker's trending at that moment, and (c') training-time popularity;
- (b) and (c) again with the knobs a validation sweep chose (:mod:`benchmarks.freshness_tuning`).

Every list comes from the project's own code: batch/ trains; the worker's state, trending
and ``recommend_many`` rank (:mod:`benchmarks.freshness_replay`,
:mod:`benchmarks.freshness_methods`). The result and its reading are in docs/freshness.md.

    python -m benchmarks.freshness                 # about 2 min on 2 shared cores
    python -m benchmarks.freshness --skip-tune     # without the validation sweep
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from batch.config import TrainConfig
from benchmarks.freshness_chart import draw
from benchmarks.freshness_methods import (
    History,
    offline_model,
    popularity,
    popularity_lists,
    since_cutoff,
    stale,
    vector_lengths,
    worker_lists,
    worker_state,
)
from benchmarks.freshness_metrics import scored
from benchmarks.freshness_protocol import Split, spread, steps, time_split
from benchmarks.freshness_replay import Moment, replay
from benchmarks.freshness_report import (
    ALL,
    KNOWN,
    Results,
    by_since,
    describe,
    differences,
    table,
)
from benchmarks.freshness_tuning import DAY_MS, sweep
from schemas import movielens
from streams.recommender import Tuning
from streams.settings import StreamsSettings
from streams.signals import Weights
from streams.state import Limits

K = 10
ROOT = Path(__file__).resolve().parent.parent


POPULAR, TRENDING, TUNED = "popularity", "trending", "trending, tuned"
"""The fallbacks: training-time popularity, and the worker's trending (default, tuned)."""


@dataclass(frozen=True, slots=True)
class Method:
    key: str
    """Short, for the chart."""
    description: str
    tuning: Tuning | None
    """The worker's knobs; None: no model, the list is the fallback's."""
    history: History
    fallback: str
    """What a user with nothing to go on gets: one of the fallbacks."""


def log(message: str) -> None:
    print(message, flush=True)


def methods_of(
    default: Tuning, tuned: Tuning | None, tuned_days: float, cutoff: int
) -> list[Method]:
    since = since_cutoff(cutoff)
    # (a) runs the worker as configured: with nothing to fold in, a known user is scored with
    # the offline vector alone, whatever the blend (run_models checks it on seed 0).
    days = f"{tuned_days:g} d"
    rows: list[tuple[str, str, Tuning | None, History, str]] = [
        ("(a) stale", "offline vector only; new users: popularity", default, stale, POPULAR),
        ("(b) fold-in", "offline + fold-in of the events since T", default, since, TRENDING),
        (
            "(b') all recent",
            "offline + fold-in of the last 50 events",
            default,
            worker_state,
            TRENDING,
        ),
        ("(b) tuned", "fold-in with the validation-tuned knobs", tuned, since, TUNED),
        ("(c) trending 1 h", "the worker's trending, 1 h half-life", None, stale, TRENDING),
        (f"(c) trending {days}", f"trending with the tuned {days} half-life", None, stale, TUNED),
        ("(c') popularity", "popularity at training time", None, stale, POPULAR),
    ]
    return [Method(*row) for row in rows if tuned is not None or row[4] != TUNED]


def run_models(
    split: Split,
    ml: movielens.MovieLens,
    moments: Sequence[Moment],
    methods: Sequence[Method],
    fallbacks: dict[str, list[list[str]]],
    seeds: int,
) -> Results:
    """Each method's scored frames: one per training seed for the model-based ones."""
    walk = [m.step for m in moments]
    results: Results = {m.key: [] for m in methods}
    for method in methods:
        if method.tuning is None:
            results[method.key].append(scored(walk, fallbacks[method.fallback], K))
    for seed in range(seeds):
        start = time.perf_counter()
        config = TrainConfig(random_state=seed, deterministic=True)
        model = offline_model(split.train, ml.items, ml.users, config)
        trained = time.perf_counter() - start
        fell_back = []
        for method in methods:
            if method.tuning is not None:
                fallback = fallbacks[method.fallback]
                lists, fell = worker_lists(model, moments, method.tuning, method.history, fallback)
                results[method.key].append(scored(walk, lists, K))
                fell_back.append(f"{method.key} {sum(fell)}")
        log(
            f"seed {seed}: trained in {trained:.1f}s, ranked in "
            f"{time.perf_counter() - start - trained:.1f}s; steps served the fallback: "
            + ", ".join(fell_back)
        )
        if seed == 0:
            # (a) is the offline vector alone: the worker's lists equal those with blend 1.
            first = methods[0]
            assert first.history is stale and first.tuning is not None
            fallback = fallbacks[first.fallback]
            alone = replace(first.tuning, blend_weight=1.0)
            shipped, _ = worker_lists(model, moments, first.tuning, stale, fallback)
            if shipped != worker_lists(model, moments, alone, stale, fallback)[0]:
                raise AssertionError("(a) differs from the offline vector alone (blend 1)")
            log("  (a) with the default blend = the offline vector alone (blend 1): checked")
            # Why the ridge term matters: the length of the folded-in vector.
            lengths = [
                f"{m.key} {vector_lengths(model, moments, m.tuning, m.history, 10):.2f}"
                for m in methods
                if m.tuning is not None and m.history is not stale
            ]
            trained_length = float(np.median(np.linalg.norm(model.users, axis=1)))
            log(
                f"  median vector length, seed 0: trained users {trained_length:.2f}; fold-in "
                f"with >= 10 events: {', '.join(lengths)}; item bias sd {model.biases.std():.2f}"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantile", type=float, default=0.8, help="T: this quantile of times")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..n-1")
    parser.add_argument("--steps-per-user", type=int, default=10, help="0: every step")
    parser.add_argument("--skip-tune", action="store_true", help="no validation sweep")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "freshness.png")
    args = parser.parse_args()
    begun = time.perf_counter()
    # The worker's defaults, not the environment: the figures must not depend on the shell.
    settings = StreamsSettings.model_construct()
    default = Tuning(
        K, settings.fold_in_lambda, settings.blend_weight, settings.recency_half_life_s * 1000
    )
    # Every seen item is excluded for every method (the worker keeps 500; users here rate
    # up to 737), so that the methods rank the same candidates.
    limits = Limits(settings.recent_interactions, 10_000, settings.recent_event_ids)
    weights = Weights(settings.view_weight, settings.click_weight)
    log(
        f"config: T at the {args.quantile:.0%} time quantile, k={K}, seeds 0..{args.seeds - 1}, "
        f"<= {args.steps_per_user or 'all'} steps per user; worker defaults {default}, "
        f"trending half-life {settings.trending_half_life_s:g}s; TrainConfig() defaults, "
        "one thread (deterministic)"
    )
    ml = movielens.load()
    split = time_split(ml.ratings, args.quantile)
    walk = spread(steps(split), args.steps_per_user)
    describe(split, walk, ml.items, log)
    boards = {TRENDING: settings.trending_half_life_s * 1000}
    tuned = None
    if not args.skip_tune:
        tuned, boards[TUNED] = sweep(
            ml, split, args.quantile, args.steps_per_user, limits, weights, default, log
        )
    start = time.perf_counter()
    moments = replay(
        ml.ratings,
        walk,
        boards,
        limits,
        K,
        weights=weights,
        cap=settings.trending_items,
        devices=settings.trending_devices,
    )
    log(f"\ntest: replayed {len(ml.ratings):,} events in {time.perf_counter() - start:.0f}s")
    fallbacks = {name: [list(m.boards[name]) for m in moments] for name in boards}
    fallbacks[POPULAR] = popularity_lists(popularity(split.train), moments, K)
    days = boards.get(TUNED, 0.0) / DAY_MS
    methods = methods_of(default, tuned, days, split.cutoff)
    results = run_models(split, ml, moments, methods, fallbacks, args.seeds)
    bars = table(results, {m.key: f"{m.key}: {m.description}" for m in methods}, log)
    shown = [m.key for m in methods if m.history is not worker_state]
    curve = by_since(results, shown, ALL, log)
    by_since(results, shown, KNOWN, log)
    stale_key, fold_key = methods[0].key, methods[1].key
    pairs = [(stale_key, fold_key)]
    if tuned is not None:
        tuned_key = next(m.key for m in methods if m.tuning is tuned)
        board_key = next(m.key for m in methods if m.tuning is None and m.fallback == TUNED)
        pairs += [(stale_key, tuned_key), (fold_key, tuned_key), (board_key, fold_key)]
        pairs += [(board_key, tuned_key)]
    differences(results, pairs, log)
    cutoff = pd.to_datetime(split.cutoff, unit="s")
    title = (
        f"Next-event freshness on ML-100K: trained before {cutoff:%Y-%m-%d} "
        f"({args.quantile:.0%} of ratings), {len(walk):,} steps of "
        f"{len({s.user_id for s in walk})} users after it; models: mean ± sd over "
        f"{args.seeds} seeds"
    )
    tuned_keys = " and ".join(m.key for m in methods if m.fallback == TUNED)
    note = (
        f"Worker defaults except {tuned_keys or 'nothing'}, whose knobs were chosen on a "
        "validation slice before T, never on these targets. Candidates exclude everything "
        "the user rated before the target. Command: python -m benchmarks.freshness"
    )
    draw(args.chart, title, [(ALL, bars[ALL]), (KNOWN, bars[KNOWN])], curve, note)
    log(f"\nwrote {args.chart}; total {time.perf_counter() - begun:.0f}s")


if __name__ == "__main__":
    main()
