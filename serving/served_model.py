"""The model in force, prepared for requests, behind one reference that is swapped atomically.

A :class:`ServedModel` is built once per verified artifact, on the follower's thread, and is
never changed afterwards. :class:`ModelSlot` holds the current one in a single attribute:
a request reads ``slot.current`` once and keeps that object to the end, so a swap never
mixes two models inside one answer, and rebinding one attribute is atomic in CPython, so no
lock is needed on the request path.

Example::

    slot = ModelSlot()
    slot.swap(artifact)                 # from ModelFollower's on_model
    model = slot.current                # per request: read once, then use only `model`
    scores = model.vectors @ model.vectors[model.item_row["50"]] + model.biases
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from schemas.artifact import ModelArtifact

Floats = NDArray[np.float32]


def unit_rows(vectors: NDArray[np.floating]) -> Floats:
    """Rows scaled to length 1 (a zero row stays zero), so that a dot product is a cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _median_norm(vectors: NDArray[np.floating]) -> float:
    return float(np.median(np.linalg.norm(vectors, axis=1))) if len(vectors) else 0.0


@dataclass(frozen=True, slots=True, eq=False)
class ServedModel:
    """An artifact plus what requests need precomputed (contiguous arrays, unit vectors, the
    items ordered by bias for the last-resort popularity)."""

    artifact: ModelArtifact
    vectors: Floats
    biases: Floats
    unit: Floats
    by_bias: NDArray[np.intp]
    user_norm: float
    """Median length of the trained user vectors (0 without users): the scale of fold-ins."""
    loaded_at: float = field(default_factory=time.time)

    @classmethod
    def of(cls, artifact: ModelArtifact) -> ServedModel:
        vectors = np.ascontiguousarray(artifact.item_embeddings, dtype=np.float32)
        biases = np.ascontiguousarray(artifact.item_biases, dtype=np.float32)
        return cls(
            artifact=artifact,
            vectors=vectors,
            biases=biases,
            unit=unit_rows(vectors),
            by_bias=np.argsort(-biases, kind="stable"),
            user_norm=_median_norm(artifact.user_embeddings),
        )

    @property
    def version(self) -> int:
        return self.artifact.version

    @property
    def item_ids(self) -> tuple[str, ...]:
        return self.artifact.item_ids

    @property
    def item_row(self) -> Mapping[str, int]:
        return self.artifact.item_row

    def user_vector(self, user_id: str) -> Floats | None:
        """The trained vector of a user the model knows, else None."""
        row = self.artifact.user_row.get(user_id)
        return None if row is None else self.artifact.user_embeddings[row]


@dataclass(frozen=True, slots=True)
class Refused:
    version: int | None
    reason: str
    at: float


class ModelSlot:
    """Holds the :class:`ServedModel` in force and the last refusals (newest last)."""

    def __init__(self, keep_refusals: int = 20) -> None:
        self.current: ServedModel | None = None
        self.refusals: deque[Refused] = deque(maxlen=keep_refusals)
        self._lock = threading.Lock()  # only between writers (follower, tests), never readers

    @property
    def version(self) -> int:
        model = self.current
        return 0 if model is None else model.version

    def swap(self, artifact: ModelArtifact) -> ServedModel | None:
        """Prepare ``artifact`` and put it in force if newer; returns it, or None if older.

        The follower only hands over newer models; the check keeps a fake or a second source
        from ever moving the version backwards.
        """
        prepared = ServedModel.of(artifact)  # the slow part, outside the lock
        with self._lock:
            if self.current is not None and artifact.version <= self.current.version:
                return None
            self.current = prepared  # the one atomic step requests can observe
        return prepared

    def refuse(self, version: int | None, reason: str) -> None:
        self.refusals.append(Refused(version, reason, time.time()))
