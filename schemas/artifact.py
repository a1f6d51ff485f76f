"""The model artifact: what offline training hands to serving and the stream worker.

A :class:`ModelArtifact` holds arrays plus the id maps that give their rows meaning, and
checks on construction that they fit together (equal embedding widths, one id per row,
cluster numbers in range, no NaN or infinity). Its byte form is the container of
:mod:`schemas.array_container` with the header and arrays listed in
``docs/model-artifact.md``: never pickle, because anything on a topic can come from anyone
and unpickling is code execution.

Example::

    from schemas.artifact import ModelArtifact

    model = ModelArtifact(version=7, item_ids=("i1", "i2"), item_embeddings=items,
                          item_biases=item_b, user_ids=("u1",), user_embeddings=users,
                          user_biases=user_b, metrics={"precision@10": 0.21})
    data = model.to_bytes()
    again = ModelArtifact.from_bytes(data)     # raises ModelRejected if anything is off
    again.item_row["i2"]                       # 1
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from schemas import artifact_checks as check
from schemas.array_container import MalformedContainer, pack, unpack
from schemas.artifact_checks import FloatArray, IntArray, ModelRejected
from schemas.events import now_ms

__all__ = ["FORMAT", "ItemFeatures", "ModelArtifact", "ModelRejected", "digest"]

FORMAT = "nearline-artifact/1"
"""The value of ``ModelManifest.format`` and of the header's ``format``."""

ARRAYS: Mapping[str, tuple[str, int]] = {
    "item_embeddings": ("<f4", 2),
    "item_biases": ("<f4", 1),
    "user_embeddings": ("<f4", 2),
    "user_biases": ("<f4", 1),
    "feature_embeddings": ("<f4", 2),
    "feature_biases": ("<f4", 1),
    "cluster_centroids": ("<f4", 2),
    "item_clusters": ("<i4", 1),
    "item_features_indptr": ("<i8", 1),
    "item_features_indices": ("<i4", 1),
    "item_features_data": ("<f4", 1),
}
"""Every array an artifact may hold, in file order, with its dtype and number of dimensions.
The three ``item_features_*`` arrays are present together or not at all."""

_FEATURE_ARRAYS = ("item_features_indptr", "item_features_indices", "item_features_data")
DENSE_ARRAYS = tuple(name for name in ARRAYS if name not in _FEATURE_ARRAYS)
"""The arrays every artifact holds, each an attribute of :class:`ModelArtifact`."""
FLOAT_ARRAYS = tuple(name for name in DENSE_ARRAYS if ARRAYS[name][0] == "<f4")
"""The dense float arrays, which must hold finite numbers only."""
_HEADER_KEYS = frozenset(
    {"format", "version", "created_at", "config", "cutoff", "metrics"}
    | {"item_ids", "user_ids", "item_feature_names"}
)


def digest(data: bytes) -> str:
    """Lowercase hex sha256 of artifact bytes, as ``ModelManifest.sha256`` carries it."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class ItemFeatures:
    """Which features each item has, as CSR rows: item ``i`` has features
    ``indices[indptr[i]:indptr[i + 1]]`` (rows of ``feature_embeddings``) with weights
    ``data[indptr[i]:indptr[i + 1]]``."""

    indptr: NDArray[np.int64]
    indices: IntArray
    data: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "indptr", check.numeric("item_features_indptr", self.indptr, "<i8", 1)
        )
        object.__setattr__(
            self, "indices", check.numeric("item_features_indices", self.indices, "<i4", 1)
        )
        object.__setattr__(self, "data", check.numeric("item_features_data", self.data, "<f4", 1))

    def of(self, row: int) -> tuple[IntArray, FloatArray]:
        """Feature rows and weights of item ``row``."""
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.indices[lo:hi], self.data[lo:hi]


def _empty_2d() -> FloatArray:
    # (0, 0) stands for "none"; __post_init__ widens it to (0, d) once d is known.
    return np.zeros((0, 0), np.float32)


def _empty_floats() -> FloatArray:
    return np.zeros(0, np.float32)


def _empty_ints() -> IntArray:
    return np.zeros(0, np.int32)


@dataclass(frozen=True, slots=True, eq=False)
class ModelArtifact:
    """A trained model: embeddings and biases for items, users and item features, the id
    maps (row ``i`` of ``item_embeddings`` is ``item_ids[i]``), clusters, and metadata.

    Arrays are coerced to their declared dtype (float32, or int32 for ``item_clusters``);
    non-numeric input is refused. Treat the arrays as read-only: those read by
    :meth:`from_bytes` are views of the artifact bytes. Without clusters, pass no
    ``cluster_centroids`` and no ``item_clusters`` (both then have 0 rows).
    """

    version: int
    item_ids: tuple[str, ...]
    item_embeddings: FloatArray
    item_biases: FloatArray
    user_ids: tuple[str, ...]
    user_embeddings: FloatArray
    user_biases: FloatArray
    item_feature_names: tuple[str, ...] = ()
    feature_embeddings: FloatArray = field(default_factory=_empty_2d)
    feature_biases: FloatArray = field(default_factory=_empty_floats)
    item_features: ItemFeatures | None = None
    cluster_centroids: FloatArray = field(default_factory=_empty_2d)
    item_clusters: IntArray = field(default_factory=_empty_ints)
    created_at: int = field(default_factory=now_ms)
    config: Mapping[str, Any] = field(default_factory=dict)
    """Training configuration (JSON-compatible)."""
    cutoff: Mapping[str, Any] = field(default_factory=dict)
    """What data the training snapshot covered, e.g. last event time (JSON-compatible)."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    item_row: Mapping[str, int] = field(init=False, repr=False)
    """Item id -> row, the inverse of ``item_ids``."""
    user_row: Mapping[str, int] = field(init=False, repr=False)
    feature_row: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        version = self.version
        check.counter("version", version, low=1, version=None)
        check.counter("created_at", self.created_at, low=0, version=version)
        put = object.__setattr__
        put(self, "item_ids", check.ids("item_ids", self.item_ids, version))
        put(self, "user_ids", check.ids("user_ids", self.user_ids, version))
        put(
            self,
            "item_feature_names",
            check.ids("item_feature_names", self.item_feature_names, version),
        )
        put(self, "item_row", {key: row for row, key in enumerate(self.item_ids)})
        put(self, "user_row", {key: row for row, key in enumerate(self.user_ids)})
        put(self, "feature_row", {key: row for row, key in enumerate(self.item_feature_names)})
        for name in DENSE_ARRAYS:
            dtype, ndim = ARRAYS[name]
            put(self, name, check.numeric(name, getattr(self, name), dtype, ndim, version))
        dim = self.item_embeddings.shape[1]
        for name in ("feature_embeddings", "cluster_centroids"):
            if getattr(self, name).shape == (0, 0):
                put(self, name, np.zeros((0, dim), np.float32))
        check.consistent(self)
        put(self, "config", check.json_object("config", self.config, version))
        put(self, "cutoff", check.json_object("cutoff", self.cutoff, version))
        put(self, "metrics", check.metrics(self.metrics, version))

    @property
    def dim(self) -> int:
        """Embedding width shared by items, users, features and centroids."""
        return int(self.item_embeddings.shape[1])

    def arrays(self) -> dict[str, NDArray[Any]]:
        """Every array by its file name, in file order."""
        out: dict[str, NDArray[Any]] = {name: getattr(self, name) for name in DENSE_ARRAYS}
        if self.item_features is not None:
            out["item_features_indptr"] = self.item_features.indptr
            out["item_features_indices"] = self.item_features.indices
            out["item_features_data"] = self.item_features.data
        return {name: out[name] for name in ARRAYS if name in out}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every array by name, as ``ModelManifest.shapes`` carries them."""
        return {name: tuple(int(d) for d in a.shape) for name, a in self.arrays().items()}

    def to_bytes(self) -> bytes:
        """The artifact's byte form (deterministic: equal artifacts give equal bytes)."""
        header = {
            "format": FORMAT,
            "version": self.version,
            "created_at": self.created_at,
            "config": self.config,
            "cutoff": self.cutoff,
            "metrics": self.metrics,
            "item_ids": list(self.item_ids),
            "user_ids": list(self.user_ids),
            "item_feature_names": list(self.item_feature_names),
        }
        return pack(header, list(self.arrays().items()))

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelArtifact:
        """Read and check an artifact; raises :class:`ModelRejected` saying what is wrong."""
        try:
            header, arrays = unpack(data, ARRAYS)
        except MalformedContainer as exc:
            raise ModelRejected(f"malformed artifact: {exc}") from exc
        version = header.get("version")
        known = version if type(version) is int else None
        if set(header) != _HEADER_KEYS:
            extra, missing = set(header) - _HEADER_KEYS, _HEADER_KEYS - set(header)
            raise ModelRejected(
                f"header keys differ: unexpected {sorted(extra)}, missing {sorted(missing)}", known
            )
        if header["format"] != FORMAT:
            raise ModelRejected(f"format {header['format']!r:.40} is not {FORMAT}", known)
        present = [name for name in _FEATURE_ARRAYS if name in arrays]
        if present and len(present) != len(_FEATURE_ARRAYS):
            raise ModelRejected(f"item features are incomplete: only {present}", known)
        missing_arrays = [n for n in DENSE_ARRAYS if n not in arrays]
        if missing_arrays:
            raise ModelRejected(f"arrays missing: {', '.join(missing_arrays)}", known)
        features = None
        if present:
            features = ItemFeatures(*(arrays[name] for name in _FEATURE_ARRAYS))
        for name in ("item_ids", "user_ids", "item_feature_names"):
            if not isinstance(header[name], list):
                raise ModelRejected(f"{name} is not a list", known)
        return cls(
            version=header["version"],
            item_ids=tuple(header["item_ids"]),
            user_ids=tuple(header["user_ids"]),
            item_feature_names=tuple(header["item_feature_names"]),
            item_features=features,
            **{name: arrays[name] for name in DENSE_ARRAYS},
            created_at=header["created_at"],
            config=header["config"],
            cutoff=header["cutoff"],
            metrics=header["metrics"],
        )
