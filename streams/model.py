"""The model in force: a verified artifact prepared for scoring, swapped in atomically.

:class:`ModelHolder` is what the worker reads on every recomputation. The model follower's
thread builds a new :class:`LoadedModel` and replaces the reference in one assignment,
which is atomic in Python, so a recomputation sees either the old model or the new one,
never a mixture. A model refused by verification never reaches the holder; the old one
stays and the refusal is logged with its reason.

Example::

    holder = ModelHolder()
    follower = ModelFollower(kafka, catalogue, on_model=holder.swap, on_refused=holder.refused)
    model = holder.current          # None until the first valid model arrives
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.artifact import ModelArtifact
from streams.ranking import unit_rows

log = logging.getLogger(__name__)

TARGET_SAMPLE_USERS = 2000
TARGET_TOP_K = 10


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    version: int
    item_ids: tuple[str, ...]
    item_row: Mapping[str, int]
    user_row: Mapping[str, int]
    items: NDArray[np.float32]
    biases: NDArray[np.float32]
    users: NDArray[np.float32]
    unit_centroids: NDArray[np.float64]
    target: float
    """The score a fold-in aims at for an interacted item: the mean of known users' top
    scores, i.e. what a liked item scores in this model (1.0 if the model has no users)."""

    @classmethod
    def of(cls, artifact: ModelArtifact) -> LoadedModel:
        items = np.ascontiguousarray(artifact.item_embeddings, np.float32)
        biases = np.ascontiguousarray(artifact.item_biases, np.float32)
        users = np.ascontiguousarray(artifact.user_embeddings, np.float32)
        return cls(
            version=artifact.version,
            item_ids=artifact.item_ids,
            item_row=artifact.item_row,
            user_row=artifact.user_row,
            items=items,
            biases=biases,
            users=users,
            unit_centroids=unit_rows(artifact.cluster_centroids),
            target=top_score_level(users, items, biases),
        )


def top_score_level(
    users: NDArray[np.float32], items: NDArray[np.float32], biases: NDArray[np.float32]
) -> float:
    """Mean score of known users' top items (a deterministic sample of users)."""
    if users.shape[0] == 0 or items.shape[0] == 0:
        return 1.0
    step = max(1, users.shape[0] // TARGET_SAMPLE_USERS)
    scores = users[::step] @ items.T + biases
    k = min(TARGET_TOP_K, items.shape[0])
    top = np.partition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    return float(top.mean())


class ModelHolder:
    """The current :class:`LoadedModel` (or None), and whether start-up has read the log."""

    def __init__(self) -> None:
        self.current: LoadedModel | None = None
        self.ready = threading.Event()
        self.refusals = 0

    def swap(self, artifact: ModelArtifact) -> None:
        """Prepare ``artifact`` and make it current (runs on the follower's thread)."""
        model = LoadedModel.of(artifact)
        previous = self.current
        self.current = model
        log.info(
            "model v%d in force (%d items, %d users; was %s)",
            model.version,
            len(model.item_ids),
            len(model.user_row),
            f"v{previous.version}" if previous else "none: trending only",
        )

    def refused(self, version: int | None, reason: str) -> None:
        self.refusals += 1
        kept = f"v{self.current.version}" if self.current else "no model (trending)"
        log.warning("model v%s refused, keeping %s: %s", version, kept, reason)
