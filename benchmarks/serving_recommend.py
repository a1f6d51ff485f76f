"""In-process time of ``Recommender.recommend()`` per path, beside a bare numpy top-10.

The model is the ML-100K one the deployment published (1,682 items); item data comes from
its PostgreSQL schema. Paths: a nearline set (from the store), an online fold-in of 3
recent items, a known user scored with their trained vector, and a cold-start user
(trending). The reference is the floor any model-based answer pays: ``V @ u + b``,
``argpartition`` and sorting 10, in numpy, in the same run.

    eval "$(nearline dev env)"
    python benchmarks/serving_recommend.py [--prefix b1]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

import numpy as np
from serving_deployment import movielens

from schemas.events import RecommendationSet, RecommendedItem
from schemas.model_loader import load_latest
from serving.answers import Query
from serving.database_reader import DatabaseReader
from serving.item_data import DataSlot
from serving.recent_items import RecentItems
from serving.recommendation_store import RecommendationStore
from serving.recommender import Recommender
from serving.served_model import ModelSlot


def per_call_us(call: Callable[[], object], seconds: float = 1.0) -> float:
    """Median over 5 rounds of the mean time per call, in microseconds."""
    for _ in range(200):
        call()
    rounds = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            for _ in range(100):
                call()
            n += 100
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return float(np.median(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=f"bench{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    deployment = movielens(args.prefix)
    artifact = load_latest(deployment.kafka, deployment.catalogue, timeout=60)
    assert artifact is not None
    models, store, data = ModelSlot(), RecommendationStore(), DataSlot()
    model = models.swap(artifact)
    assert model is not None
    data.current = DatabaseReader(deployment.database_url, db_schema=args.prefix).item_data()
    store.put(
        RecommendationSet(
            "nearline-user",
            tuple(RecommendedItem(str(i), 1.0, "because you watched 50") for i in range(1, 51)),
            "nearline",
        )
    )
    store.caught_up = True
    recommender = Recommender(models, store, data, RecentItems())
    vector, biases, vectors = artifact.user_embeddings[0], model.biases, model.vectors

    def bare() -> object:
        scores = vectors @ vector + biases
        top = np.argpartition(-scores, 9)[:10]
        return top[np.argsort(-scores[top])]

    paths = {
        "bare numpy top-10 (reference)": bare,
        "nearline set": lambda: recommender.recommend(Query("nearline-user", k=10)),
        "online fold-in (3 recent)": lambda: recommender.recommend(
            Query("new-user", k=10, recent=("50", "181", "100"))
        ),
        "online, trained user vector": lambda: recommender.recommend(Query("1", k=10)),
        "cold start (trending)": lambda: recommender.recommend(Query("stranger", k=10)),
    }
    print(f"model v{artifact.version}: {len(artifact.item_ids)} items x {artifact.dim} dims")
    print(f"{'path':32} {'us per call':>12}")
    for name, call in paths.items():
        print(f"{name:32} {per_call_us(call):12.1f}")


if __name__ == "__main__":
    main()
