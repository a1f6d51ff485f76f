"""Offline training quality and speed on ML-100K, beside LightFM's published figures.

Runs the whole pure offline job through ``batch/`` on the ``ua`` split (each user's first 10
ratings in file order are the test set):

1. the reproduction of LightFM's ``movielens`` implicit example (WARP, learning_rate 0.05,
   10 components, 10 epochs, every rating a positive), whose published test figures are
   precision@10 0.11 and AUC 0.90;
2. our default :class:`~batch.config.TrainConfig` (with item features).

Each model is scored by our metrics and, as the same-run reference, by
``lightfm.evaluation`` on the very same arrays, under both protocols: "published" (train
items stay in the ranking, as in LightFM's example) and "exclude train" (what serving does).
Figures, not assertions: run it on a quiet machine.

    .venv/bin/python benchmarks/train_quality.py --seeds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k

from batch.config import TrainConfig
from batch.evaluation import PUBLISHED_UA, Metrics, evaluate
from batch.features import FeatureSpace
from batch.interactions import Interactions, to_interactions
from batch.results import item_clusters, recommendations, similar_items
from batch.splits import ua_split
from batch.training import TrainedModel, train
from schemas import movielens

T = TypeVar("T")


def timed(timings: dict[str, float], step: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    timings[step] = time.perf_counter() - start
    return result


def as_lightfm(model: TrainedModel) -> LightFM:
    """A LightFM holding our model's per-feature arrays, for lightfm.evaluation to score.

    ``_initialize`` is private LightFM API; it allocates the optimiser state predict needs.
    """
    lightfm = LightFM(no_components=model.feature_embeddings.shape[1])
    lightfm._initialize(
        model.feature_embeddings.shape[1],
        model.feature_embeddings.shape[0],
        model.user_feature_embeddings.shape[0],
    )
    lightfm.item_embeddings = model.feature_embeddings
    lightfm.item_biases = model.feature_biases
    lightfm.user_embeddings = model.user_feature_embeddings
    lightfm.user_biases = model.user_feature_biases
    return lightfm


def lightfm_figures(
    model: TrainedModel,
    space: FeatureSpace,
    test: sp.csr_matrix,
    seen: sp.csr_matrix | None,
    threads: int,
) -> tuple[float, float, float]:
    """precision@10 and AUC by lightfm.evaluation on our arrays, and the seconds it took."""
    reference = as_lightfm(model)
    features = {"item_features": space.item_features, "user_features": space.user_features}
    start = time.perf_counter()
    precision = precision_at_k(reference, test, seen, k=10, num_threads=threads, **features)
    auc = auc_score(reference, test, seen, num_threads=threads, **features)
    return float(precision.mean()), float(auc.mean()), time.perf_counter() - start


def run(name: str, config: TrainConfig, ml: movielens.MovieLens, events: pd.DataFrame) -> None:
    timings: dict[str, float] = {}
    train_events, test_events = ua_split(events)

    def build() -> tuple[FeatureSpace, Interactions, sp.csr_matrix]:
        space = FeatureSpace.build(events, ml.items, ml.users, config)
        train_data = to_interactions(train_events, space, config)
        return space, train_data, to_interactions(test_events, space, config).csr()

    space, train_data, test = timed(timings, "interactions", build)
    seen = train_data.csr()
    model = timed(timings, "train", lambda: train(train_data, space, config, progress=False))
    # The job evaluates with train items excluded; the published protocol is extra.
    excluded = timed(timings, "evaluate", lambda: evaluate(model, test, seen, k=10))
    published = evaluate(model, test, None, k=10)

    def batch_results() -> None:
        recommendations(model, seen, config.top_n, model_version=1)
        similar_items(model, config.similar_k, model_version=1)
        item_clusters(model, model_version=1)

    timed(timings, "batch results", batch_results)
    threads = config.threads()
    theirs = {
        "published": lightfm_figures(model, space, test, None, threads),
        "exclude train": lightfm_figures(model, space, test, seen, threads),
    }
    print(
        f"\n== {name}: {space.item_features.shape[1]} item features, {config.no_components} "
        f"components, {config.epochs} epochs, {threads} thread(s)"
    )
    print(
        f"{'protocol':<15}{'p@10':>8}{'AUC':>8}{'r@10':>8}{'NDCG@10':>9}{'cover':>8}"
        f"{'lightfm p@10':>14}{'lightfm AUC':>13}"
    )
    for protocol, metrics in (("published", published), ("exclude train", excluded)):
        p, auc, _ = theirs[protocol]
        print(
            f"{protocol:<15}{metrics.precision:>8.4f}{metrics.auc:>8.4f}{metrics.recall:>8.4f}"
            f"{metrics.ndcg:>9.4f}{metrics.coverage:>8.4f}{p:>14.4f}{auc:>13.4f}"
        )
    print(
        f"{'LightFM paper':<15}{PUBLISHED_UA['precision']:>8.2f}{PUBLISHED_UA['auc']:>8.2f}"
        "   (their example, published protocol)"
    )
    steps = "  ".join(f"{step} {seconds:.2f}s" for step, seconds in timings.items())
    print(f"time: {steps}  | job total {sum(timings.values()):.2f}s")
    print(
        f"evaluate (exclude train, p@10 + AUC + more): ours {timings['evaluate']:.2f}s, "
        f"lightfm.evaluation p@10 + AUC {theirs['exclude train'][2]:.2f}s"
    )


def seeds(config: TrainConfig, ml: movielens.MovieLens, events: pd.DataFrame, n: int) -> None:
    """Published-protocol figures over n seeds: one run is noisy at the second decimal."""
    train_events, test_events = ua_split(events)
    space = FeatureSpace.build(events, ml.items, ml.users, config)
    train_data = to_interactions(train_events, space, config)
    test = to_interactions(test_events, space, config).csr()
    found: list[Metrics] = []
    for seed in range(n):
        seeded = config.model_copy(update={"random_state": seed})
        found.append(evaluate(train(train_data, space, seeded, progress=False), test, None))
    for metric in ("precision", "auc"):
        values = [getattr(m, metric) for m in found]
        spread = statistics.stdev(values) if n > 1 else 0.0
        print(
            f"  {metric}: mean {statistics.mean(values):.4f} sd {spread:.4f} "
            f"min {min(values):.4f} over {n} seeds"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=0, help="also repeat the reproduction")
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    ml = movielens.load()
    ratings = ml.ratings  # file order: the ua split depends on it
    events = pd.DataFrame(
        {
            "user_id": ratings.user_id,
            "item_id": ratings.item_id,
            "event_type": "view",
            "ts": ratings.ts * 1000,
            "duration_ms": np.zeros(len(ratings), dtype=np.int64),
            "rating": ratings.rating,
        }
    )
    reproduction = TrainConfig.lightfm_movielens_implicit(num_threads=args.threads)
    run("LightFM movielens_implicit reproduction", reproduction, ml, events)
    run("nearline default", TrainConfig(num_threads=args.threads), ml, events)
    if args.seeds:
        print(f"\nreproduction over seeds 0..{args.seeds - 1} (published protocol):")
        seeds(reproduction, ml, events, args.seeds)


if __name__ == "__main__":
    main()
