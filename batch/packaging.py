"""Between the trainer's :class:`~batch.training.TrainedModel` and the published
:class:`~schemas.artifact.ModelArtifact`, and matrices in a given model's id space.

Example::

    artifact = to_artifact(model, version=8, config=config.model_dump(mode="json"),
                           cutoff=snapshot.cutoff, metrics={"precision@10": 0.24})
    current = from_artifact(published)      # to evaluate it on today's holdout
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.training import TrainedModel
from schemas.artifact import ItemFeatures, ModelArtifact


def to_artifact(
    model: TrainedModel,
    *,
    version: int,
    config: Mapping[str, Any],
    cutoff: Mapping[str, Any],
    metrics: Mapping[str, float],
) -> ModelArtifact:
    features = sp.csr_matrix(model.item_features)
    return ModelArtifact(
        version=version,
        item_ids=tuple(str(i) for i in model.item_ids),
        item_embeddings=np.asarray(model.item_embeddings, np.float32),
        item_biases=np.asarray(model.item_biases, np.float32),
        user_ids=tuple(str(u) for u in model.user_ids),
        user_embeddings=np.asarray(model.user_embeddings, np.float32),
        user_biases=np.asarray(model.user_biases, np.float32),
        item_feature_names=tuple(str(f) for f in model.item_feature_names),
        feature_embeddings=np.asarray(model.feature_embeddings, np.float32),
        feature_biases=np.asarray(model.feature_biases, np.float32),
        item_features=ItemFeatures(
            indptr=features.indptr.astype(np.int64),
            indices=features.indices.astype(np.int32),
            data=features.data.astype(np.float32),
        ),
        cluster_centroids=np.asarray(model.cluster_centroids, np.float32),
        item_clusters=np.asarray(model.item_clusters, np.int32),
        config=dict(config),
        cutoff=dict(cutoff),
        metrics=dict(metrics),
    )


def from_artifact(artifact: ModelArtifact) -> TrainedModel:
    """A scoring-only TrainedModel with the artifact's per-user and per-item vectors."""
    model = TrainedModel.without_features(
        np.asarray(artifact.user_embeddings),
        np.asarray(artifact.item_embeddings),
        np.asarray(artifact.user_biases),
        np.asarray(artifact.item_biases),
    )
    return model


def pairs_matrix(
    events: pd.DataFrame, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
) -> tuple[sp.csr_matrix, int]:
    """A users x items 0/1 matrix of the (user, item) pairs in ``events`` that the id maps
    know, and how many pairs were dropped because an id was unknown."""
    users = pd.Index(list(user_ids)).get_indexer(events["user_id"].astype(str))
    items = pd.Index(list(item_ids)).get_indexer(events["item_id"].astype(str))
    known = (users >= 0) & (items >= 0)
    matrix = sp.coo_matrix(
        (np.ones(int(known.sum()), np.float32), (users[known], items[known])),
        shape=(len(user_ids), len(item_ids)),
    ).tocsr()
    matrix.data[:] = 1.0  # duplicates summed above: keep it a 0/1 matrix
    return matrix, int((~known).sum())
