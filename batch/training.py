"""Train LightFM on a snapshot's interactions and hand back plain numpy arrays.

LightFM learns one embedding per *feature*. With item features, an item's vector is the
weighted sum of its features' vectors (``item_features @ feature_embeddings``); the
:class:`TrainedModel` keeps both, so serving can score known items directly and fold in
a new item from its features.

Example::

    model = train(data, space, TrainConfig())
    scores = model.scores(np.array([0, 1]))  # 2 x n_items
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM
from tqdm import tqdm

from batch.clusters import kmeans
from batch.config import TrainConfig
from batch.features import FeatureSpace
from batch.interactions import Interactions
from schemas.errors import NearlineError


class TrainingError(NearlineError):
    """Training produced no usable model (for example, embeddings that are not finite)."""


@dataclass(frozen=True)
class TrainedModel:
    item_embeddings: np.ndarray
    """Per-item vectors (n_items x d) = item_features @ feature_embeddings."""
    item_biases: np.ndarray
    user_embeddings: np.ndarray
    """Per-user vectors (n_users x d) = user_features @ user_feature_embeddings."""
    user_biases: np.ndarray
    feature_embeddings: np.ndarray
    """Per-item-feature vectors (n_item_features x d): LightFM's own ``item_embeddings``."""
    feature_biases: np.ndarray
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_feature_names: np.ndarray
    item_features: sp.csr_matrix
    cluster_centroids: np.ndarray
    """k x d k-means centroids of the per-item vectors."""
    item_clusters: np.ndarray
    """Cluster of each item (n_items, int32)."""
    user_feature_embeddings: np.ndarray
    user_feature_biases: np.ndarray
    user_feature_names: np.ndarray

    @classmethod
    def without_features(
        cls,
        user_embeddings: np.ndarray,
        item_embeddings: np.ndarray,
        user_biases: np.ndarray | None = None,
        item_biases: np.ndarray | None = None,
    ) -> TrainedModel:
        """A model whose only features are identities (ids ``u0..``, ``i0..``; one cluster).

        Example: ``TrainedModel.without_features(np.eye(2), np.eye(3)).scores(np.array([0]))``
        """
        users, items = len(user_embeddings), len(item_embeddings)
        user_ids = np.array([f"u{u}" for u in range(users)], dtype=object)
        item_ids = np.array([f"i{i}" for i in range(items)], dtype=object)
        item_vectors = np.asarray(item_embeddings, dtype=np.float32)
        user_vectors = np.asarray(user_embeddings, dtype=np.float32)
        item_bias = np.zeros(items, np.float32) if item_biases is None else item_biases
        user_bias = np.zeros(users, np.float32) if user_biases is None else user_biases
        return cls(
            item_embeddings=item_vectors,
            item_biases=np.asarray(item_bias, dtype=np.float32),
            user_embeddings=user_vectors,
            user_biases=np.asarray(user_bias, dtype=np.float32),
            feature_embeddings=item_vectors,
            feature_biases=np.asarray(item_bias, dtype=np.float32),
            item_ids=item_ids,
            user_ids=user_ids,
            item_feature_names="item:" + item_ids,
            item_features=sp.identity(items, format="csr", dtype=np.float32),
            cluster_centroids=item_vectors.mean(axis=0, keepdims=True),
            item_clusters=np.zeros(items, np.int32),
            user_feature_embeddings=user_vectors,
            user_feature_biases=np.asarray(user_bias, dtype=np.float32),
            user_feature_names="user:" + user_ids,
        )

    def scores(self, users: np.ndarray) -> np.ndarray:
        """LightFM's prediction for the given user rows against every item (float32)."""
        scores = self.user_embeddings[users] @ self.item_embeddings.T
        scores += self.item_biases[None, :]
        scores += self.user_biases[users, None]
        return np.asarray(scores, dtype=np.float32)


def train(
    data: Interactions, space: FeatureSpace, config: TrainConfig, progress: bool = True
) -> TrainedModel:
    """Fit LightFM epoch by epoch (one tqdm step each), then cluster the item vectors.

    With ``config.deterministic`` training runs on one thread and the same seed gives the
    same arrays; otherwise it uses every core and only the initialisation is seeded.
    """
    model = LightFM(
        no_components=config.no_components,
        loss=config.loss,
        learning_rate=config.learning_rate,
        item_alpha=config.item_alpha,
        user_alpha=config.user_alpha,
        max_sampled=config.max_sampled,
        random_state=np.random.RandomState(config.random_state),
    )
    # WARP/BPR/k-OS optimise ranks, not values: the weight says how much a positive counts.
    weights = None if config.loss == "warp-kos" else data.weights
    threads = config.threads()
    for _ in tqdm(range(config.epochs), desc="train", unit="epoch", disable=not progress):
        model.fit_partial(
            data.matrix,
            user_features=space.user_features,
            item_features=space.item_features,
            sample_weight=weights,
            epochs=1,
            num_threads=threads,
        )
    arrays = (model.item_embeddings, model.user_embeddings, model.item_biases)
    if not all(np.isfinite(a).all() for a in arrays):
        raise TrainingError("training diverged (non-finite embeddings); lower learning_rate")
    item_embeddings = np.asarray(space.item_features @ model.item_embeddings, dtype=np.float32)
    k = min(config.n_clusters, len(space.item_ids))
    centroids, clusters = kmeans(item_embeddings, k, seed=config.random_state)
    return TrainedModel(
        item_embeddings=item_embeddings,
        item_biases=np.asarray(space.item_features @ model.item_biases, dtype=np.float32),
        user_embeddings=np.asarray(space.user_features @ model.user_embeddings, dtype=np.float32),
        user_biases=np.asarray(space.user_features @ model.user_biases, dtype=np.float32),
        feature_embeddings=model.item_embeddings.copy(),
        feature_biases=model.item_biases.copy(),
        item_ids=space.item_ids,
        user_ids=space.user_ids,
        item_feature_names=space.item_feature_names,
        item_features=space.item_features,
        cluster_centroids=centroids,
        item_clusters=clusters,
        user_feature_embeddings=model.user_embeddings.copy(),
        user_feature_biases=model.user_biases.copy(),
        user_feature_names=space.user_feature_names,
    )
