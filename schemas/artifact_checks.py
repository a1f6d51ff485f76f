"""The rules a :class:`~schemas.artifact.ModelArtifact` obeys, and the error for breaking them.

Kept apart from the artifact class so that the class reads as a description of the model
and this module as the list of everything a reader refuses. Each check raises
:class:`ModelRejected` with a message naming the field and the problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from schemas.errors import NearlineError

if TYPE_CHECKING:
    from schemas.artifact import ModelArtifact

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int32]

_INT_RANGES = {"<i4": (-(2**31), 2**31 - 1), "<i8": (-(2**63), 2**63 - 1)}


class ModelRejected(NearlineError):
    """A model artifact or its publication is not acceptable; the old model stays in force.

    ``str(exc)`` reads like ``model v7 refused: chunk 2 of 3 sha256 mismatch``; ``version``
    is None when not even the version could be read, ``detail`` is the part after the colon.
    """

    def __init__(self, detail: str, version: int | None = None) -> None:
        self.detail = detail
        self.version = version
        label = f"model v{version}" if version is not None else "model"
        super().__init__(f"{label} refused: {detail}")


def counter(name: str, value: Any, *, low: int, version: int | None) -> None:
    """``value`` must be a plain int >= ``low`` (bool is refused, though Python calls it int)."""
    if type(value) is not int or value < low:
        raise ModelRejected(f"{name} {value!r:.40} is not an integer >= {low}", version)


def ids(name: str, values: Any, version: int | None) -> tuple[str, ...]:
    """An id map: non-empty, distinct strings (index = row)."""
    out = tuple(values)
    seen: set[str] = set()
    for position, value in enumerate(out):
        if type(value) is not str or not value:
            raise ModelRejected(
                f"{name}[{position}] is {value!r:.40}, not a non-empty string", version
            )
        if value in seen:
            raise ModelRejected(f"{name} holds {value!r:.40} twice", version)
        seen.add(value)
    return out


def numeric(
    name: str, value: Any, dtype: str, ndim: int, version: int | None = None
) -> NDArray[Any]:
    """``value`` as an array of ``dtype`` with ``ndim`` dimensions; only numbers are accepted.

    Object, string and boolean arrays are refused rather than converted, and so are floats
    where integers belong and integers that do not fit.
    """
    array = np.asarray(value)
    target = np.dtype(dtype)
    # Floats may not silently become integers; an empty float array (``np.asarray([])``)
    # holds nothing to lose, so it may.
    allowed_kinds = "iuf" if target.kind == "f" or array.size == 0 else "iu"
    if array.dtype.kind not in allowed_kinds:
        raise ModelRejected(f"{name}: dtype {array.dtype} is not allowed here ({dtype})", version)
    if array.ndim != ndim:
        raise ModelRejected(f"{name}: {array.ndim} dimensions, expected {ndim}", version)
    if target.kind == "i" and array.size and array.dtype != target:
        lo, hi = _INT_RANGES[dtype]
        if int(array.min()) < lo or int(array.max()) > hi:
            raise ModelRejected(f"{name}: values do not fit {dtype}", version)
    return array.astype(target, copy=False)


def finite(name: str, array: NDArray[Any], version: int | None) -> None:
    if array.size and not np.isfinite(array).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ModelRejected(f"{name} holds NaN or infinity (at {list(where)})", version)


def consistent(model: ModelArtifact) -> None:
    """The arrays and id maps of ``model`` describe the same items, users and features."""
    v = model.version
    n_items, dim = model.item_embeddings.shape
    if dim < 1 or n_items < 1:
        raise ModelRejected(f"item_embeddings is {n_items} x {dim}; needs >= 1 x 1", v)
    rows = {
        "item": (len(model.item_ids), "item_ids", ("item_embeddings", "item_biases")),
        "user": (len(model.user_ids), "user_ids", ("user_embeddings", "user_biases")),
        "feature": (
            len(model.item_feature_names),
            "item_feature_names",
            ("feature_embeddings", "feature_biases"),
        ),
    }
    for count, id_name, names in rows.values():
        for name in names:
            got = getattr(model, name).shape[0]
            if got != count:
                raise ModelRejected(f"{name} has {got} rows but {id_name} has {count} ids", v)
    for name in ("user_embeddings", "feature_embeddings", "cluster_centroids"):
        width = getattr(model, name).shape[1]
        if width != dim:
            raise ModelRejected(f"{name} is {width} wide but item_embeddings is {dim}", v)
    _clusters(model, n_items)
    if model.item_features is not None:
        _features(model, n_items)
    from schemas.artifact import FLOAT_ARRAYS  # here: schemas.artifact imports this module

    for name in FLOAT_ARRAYS:
        finite(name, getattr(model, name), v)


def _clusters(model: ModelArtifact, n_items: int) -> None:
    k = model.cluster_centroids.shape[0]
    clusters = model.item_clusters
    want = n_items if k else 0
    if clusters.shape != (want,):
        raise ModelRejected(
            f"item_clusters has shape {list(clusters.shape)}, expected [{want}] "
            f"({k} cluster centroids)",
            model.version,
        )
    if clusters.size and (int(clusters.min()) < 0 or int(clusters.max()) >= k):
        bad = int(clusters[(clusters < 0) | (clusters >= k)][0])
        raise ModelRejected(f"item_clusters holds {bad}, outside 0..{k - 1}", model.version)


def _features(model: ModelArtifact, n_items: int) -> None:
    assert model.item_features is not None  # noqa: S101 - the caller checked; narrows for mypy
    indptr, indices, data = (
        model.item_features.indptr,
        model.item_features.indices,
        model.item_features.data,
    )
    v, n_features = model.version, len(model.item_feature_names)
    if indptr.shape != (n_items + 1,):
        raise ModelRejected(
            f"item_features_indptr has {indptr.shape[0]} entries, expected {n_items + 1}", v
        )
    if indptr[0] != 0 or (np.diff(indptr) < 0).any():
        raise ModelRejected("item_features_indptr does not start at 0 and never decrease", v)
    if indices.shape != data.shape or int(indptr[-1]) != indices.shape[0]:
        raise ModelRejected(
            f"item_features_indptr ends at {int(indptr[-1])} but there are "
            f"{indices.shape[0]} indices and {data.shape[0]} weights",
            v,
        )
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= n_features):
        raise ModelRejected(f"item_features_indices points outside 0..{n_features - 1}", v)
    finite("item_features_data", data, v)


def json_object(name: str, value: Any, version: int | None) -> dict[str, Any]:
    """A JSON-compatible dict, normalised as JSON would return it (tuples become lists)."""
    if not isinstance(value, Mapping):
        raise ModelRejected(f"{name} is not an object", version)
    try:
        normal: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ModelRejected(f"{name} is not JSON-compatible: {exc}", version) from exc
    return normal


def metrics(value: Any, version: int | None) -> dict[str, float]:
    """Metric name -> finite number."""
    if not isinstance(value, Mapping):
        raise ModelRejected("metrics is not an object", version)
    out: dict[str, float] = {}
    for key, number in value.items():
        is_number = type(number) in (int, float) or isinstance(number, np.floating | np.integer)
        if type(key) is not str or not is_number:
            raise ModelRejected(f"metrics[{key!r:.40}] is {number!r:.40}, not a number", version)
        if not math.isfinite(float(number)):
            raise ModelRejected(f"metrics[{key!r:.40}] is not finite", version)
        out[key] = float(number)
    return out
