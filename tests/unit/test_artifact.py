"""The model artifact's byte format, its checks, chunking, and the reader's version rules.

No broker: every reader decision lives in pure code (artifact, model_chunks, assembler).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from schemas.array_container import ALIGNMENT, MAGIC, pack
from schemas.artifact import ARRAYS, FORMAT, ItemFeatures, ModelArtifact, ModelRejected, digest
from schemas.catalogue import MODEL_MANIFEST_KEY, model_chunk_key
from schemas.codec import default_codec
from schemas.events import MAX_CHUNK_BYTES, ModelChunk, ModelManifest
from schemas.model_assembler import ModelAssembler, Refusal
from schemas.model_chunks import assemble, manifest_for, parse_chunk_key, split


def make_model(
    version: int = 1,
    *,
    n_items: int = 5,
    n_users: int = 4,
    n_features: int = 3,
    dim: int = 8,
    clusters: int = 2,
    seed: int = 0,
    features: bool = True,
) -> ModelArtifact:
    rng = np.random.default_rng(seed)
    item_features = None
    if features:
        per_item = rng.integers(0, n_features + 1, n_items)
        indptr = np.concatenate([[0], np.cumsum(per_item)])
        indices = np.concatenate(
            [rng.choice(n_features, k, replace=False) for k in per_item] or [[]]
        )
        weights = rng.random(int(indptr[-1])).astype(np.float32)
        item_features = ItemFeatures(indptr, indices, weights)
    return ModelArtifact(
        version=version,
        item_ids=tuple(f"item-{i}" for i in range(n_items)),
        item_embeddings=rng.normal(size=(n_items, dim)).astype(np.float32),
        item_biases=rng.normal(size=n_items).astype(np.float32),
        user_ids=tuple(f"user-{i}" for i in range(n_users)),
        user_embeddings=rng.normal(size=(n_users, dim)).astype(np.float32),
        user_biases=rng.normal(size=n_users).astype(np.float32),
        item_feature_names=tuple(f"genre:{i}" for i in range(n_features)),
        feature_embeddings=rng.normal(size=(n_features, dim)).astype(np.float32),
        feature_biases=rng.normal(size=n_features).astype(np.float32),
        item_features=item_features,
        cluster_centroids=rng.normal(size=(clusters, dim)).astype(np.float32),
        item_clusters=rng.integers(0, clusters, n_items, dtype=np.int32)
        if clusters
        else np.zeros(0, np.int32),
        created_at=1_700_000_000_000,
        config={"loss": "warp", "epochs": 10, "components": [dim]},
        cutoff={"last_event_ts": 1_699_999_999_000},
        metrics={"precision@10": 0.25, "auc": 0.9},
    )


def assert_same(a: ModelArtifact, b: ModelArtifact) -> None:
    assert a.shapes() == b.shapes()
    for name, array in a.arrays().items():
        np.testing.assert_array_equal(array, b.arrays()[name], err_msg=name)
        assert b.arrays()[name].dtype == np.dtype(ARRAYS[name][0])
    for name in ("version", "item_ids", "user_ids", "item_feature_names", "created_at"):
        assert getattr(a, name) == getattr(b, name), name
    assert (a.config, a.cutoff, a.metrics) == (b.config, b.cutoff, b.metrics)


def csr(indptr: Any, indices: Any, data: Any) -> ItemFeatures:
    """Item features from plain lists (coerced and checked like any input)."""
    return ItemFeatures(indptr, indices, data)


def rejected(match: str) -> Any:
    return pytest.raises(ModelRejected, match=match)


# --- round trip and digest --------------------------------------------------------------


@pytest.mark.parametrize("features", [True, False])
@pytest.mark.parametrize("clusters", [0, 3])
def test_round_trip_keeps_every_array_and_field(features: bool, clusters: int) -> None:
    model = make_model(features=features, clusters=clusters, seed=clusters)
    data = model.to_bytes()
    again = ModelArtifact.from_bytes(data)
    assert_same(model, again)
    assert (again.item_features is None) is not features
    assert again.to_bytes() == data
    assert again.item_row["item-3"] == 3 and again.user_row["user-0"] == 0
    assert not again.item_embeddings.flags.writeable


def test_byte_layout_is_the_documented_one() -> None:
    data = make_model().to_bytes()
    magic, container, length = struct.unpack_from("<8sII", data)
    assert (magic, container) == (b"\x89NLMODEL", 1)
    header = json.loads(data[16 : 16 + length])
    assert header["format"] == FORMAT
    start = -(-(16 + length) // ALIGNMENT) * ALIGNMENT
    first = header["arrays"][0]
    assert first["name"] == "item_embeddings" and first["offset"] == 0
    row0 = np.frombuffer(data, "<f4", count=8, offset=start)
    np.testing.assert_array_equal(row0, make_model().item_embeddings[0])


def test_digest_is_sha256_and_changes_with_any_value() -> None:
    model = make_model()
    data = model.to_bytes()
    assert digest(data) == hashlib.sha256(data).hexdigest()
    embeddings = model.item_embeddings.copy()
    embeddings[2, 3] += 1e-3
    changed = dataclasses.replace(model, item_embeddings=embeddings)
    assert digest(changed.to_bytes()) != digest(data)


def test_inputs_are_coerced_to_declared_dtypes() -> None:
    model = make_model()
    wide = dataclasses.replace(
        model,
        item_embeddings=model.item_embeddings.astype(np.float64),
        item_clusters=model.item_clusters.astype(np.int64),
        user_biases=[float(b) for b in model.user_biases],  # type: ignore[arg-type]
    )
    assert wide.item_embeddings.dtype == np.float32
    assert wide.item_clusters.dtype == np.int32
    assert wide.user_biases.dtype == np.float32


# --- refusals of damaged or hostile bytes -----------------------------------------------


@pytest.mark.parametrize("cut", [0, 5, 15, 16, 100, -1000, -64, -1])
def test_truncated_bytes_are_refused(cut: int) -> None:
    data = make_model().to_bytes()
    with rejected("malformed artifact"):
        ModelArtifact.from_bytes(data[:cut])


def test_trailing_bytes_are_refused() -> None:
    with rejected("unexpected bytes after the last array"):
        ModelArtifact.from_bytes(make_model().to_bytes() + b"\0")


def test_pickle_is_never_executed() -> None:
    touched: list[str] = []

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return touched.append, ("pickle ran",)

    hostile = pickle.dumps(Payload())
    touched.clear()
    with rejected("bad magic"):
        ModelArtifact.from_bytes(hostile)
    with rejected("bad magic"):
        ModelArtifact.from_bytes(MAGIC[:1] + hostile)
    assert touched == []


def _container(header: dict[str, Any], entries: list[dict[str, Any]], body: bytes = b"") -> bytes:
    """Hand-made container bytes, to say things pack() never would."""
    text = json.dumps({**header, "arrays": entries}).encode()
    start = -(-(16 + len(text)) // ALIGNMENT) * ALIGNMENT
    return (
        struct.pack("<8sII", MAGIC, 1, len(text)) + text + b"\0" * (start - 16 - len(text)) + body
    )


def _header() -> dict[str, Any]:
    data = make_model().to_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    header: dict[str, Any] = json.loads(data[16 : 16 + length])
    header.pop("arrays")
    return header


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"name": "item_embeddings", "dtype": "|O", "shape": [1, 1], "offset": 0}, "dtype '\\|O'"),
        ({"name": "item_embeddings", "dtype": "<U8", "shape": [1, 1], "offset": 0}, "dtype '<U8'"),
        ({"name": "item_embeddings", "dtype": ">f4", "shape": [1, 1], "offset": 0}, "dtype '>f4'"),
        (
            {"name": "item_embeddings", "dtype": "<f4", "shape": [2**40, 2**40], "offset": 0},
            "needs bytes up to",
        ),
        ({"name": "item_embeddings", "dtype": "<f4", "shape": [-1, 4], "offset": 0}, "shape"),
        ({"name": "item_embeddings", "dtype": "<f4", "shape": [1.5, 4], "offset": 0}, "shape"),
        ({"name": "item_embeddings", "dtype": "<f4", "shape": [4], "offset": 0}, "shape"),
        ({"name": "item_embeddings", "dtype": "<f4", "shape": [1, 1], "offset": 3}, "offset"),
        ({"name": "__reduce__", "dtype": "<f4", "shape": [1], "offset": 0}, "unexpected array"),
        ({"name": "item_embeddings", "dtype": "<f4", "shape": [1, 1]}, "must have exactly"),
    ],
)
def test_hostile_array_entries_are_refused_before_reading(
    entry: dict[str, Any], match: str
) -> None:
    with rejected(match):
        ModelArtifact.from_bytes(_container(_header(), [entry], b"\0" * 64))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (struct.pack("<8sII", MAGIC, 1, 2**31) + b"{}", "runs past the end"),
        (struct.pack("<8sII", MAGIC, 2, 2) + b"{}", "container version 2"),
        (struct.pack("<8sII", MAGIC, 1, 2) + b"[]", "not a JSON object"),
        (struct.pack("<8sII", MAGIC, 1, 3) + b"{\xff}", "not valid JSON"),
        (struct.pack("<8sII", MAGIC, 1, 200_000) + b"[" * 200_000, "not valid JSON"),
        (struct.pack("<8sII", MAGIC, 1, 14) + b'{"a": NaN}    ', "JSON does not allow"),
    ],
)
def test_hostile_headers_are_refused(data: bytes, match: str) -> None:
    with rejected(match):
        ModelArtifact.from_bytes(data)


def test_header_with_unknown_keys_or_missing_arrays_is_refused() -> None:
    good = make_model().to_bytes()
    with rejected("header keys differ"):
        ModelArtifact.from_bytes(_container({**_header(), "__class__": "os.system"}, []))
    with rejected("arrays missing"):
        ModelArtifact.from_bytes(_container(_header(), []))
    with rejected("format"):
        ModelArtifact.from_bytes(_container({**_header(), "format": "pickle/4"}, []))
    assert ModelArtifact.from_bytes(good)  # the helper's header itself is fine


def test_nonzero_padding_is_refused() -> None:
    data = bytearray(make_model().to_bytes())
    (length,) = struct.unpack_from("<I", data, 12)
    assert (16 + length) % ALIGNMENT, "this model's header must leave room for padding"
    data[16 + length] = 1
    with rejected("padding"):
        ModelArtifact.from_bytes(bytes(data))


def test_nan_written_into_the_bytes_is_refused() -> None:
    data = bytearray(make_model().to_bytes())
    (length,) = struct.unpack_from("<I", data, 12)
    start = -(-(16 + length) // ALIGNMENT) * ALIGNMENT
    data[start + 4 : start + 8] = struct.pack("<f", float("nan"))
    with rejected(r"item_embeddings holds NaN or infinity \(at \[0, 1\]\)"):
        ModelArtifact.from_bytes(bytes(data))


# --- refusals of inconsistent models ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: {"user_embeddings": m.user_embeddings[:, :-1]}, "user_embeddings is 7 wide"),
        (lambda m: {"item_biases": m.item_biases[:-1]}, "item_biases has 4 rows"),
        (lambda m: {"item_ids": m.item_ids[:-1]}, "item_embeddings has 5 rows but item_ids has 4"),
        (lambda m: {"user_ids": ("a", "a", "b", "c")}, "user_ids holds 'a' twice"),
        (lambda m: {"user_ids": ("a", "", "b", "c")}, "not a non-empty string"),
        (lambda m: {"item_clusters": np.array([0, 1, 2, 0, 1])}, "item_clusters holds 2"),
        (lambda m: {"item_clusters": np.array([0, 1])}, "item_clusters has shape"),
        (lambda m: {"item_clusters": np.array([0.0, 1, 1, 0, 1])}, "dtype float64"),
        (lambda m: {"feature_biases": m.feature_biases[:1]}, "feature_biases has 1 rows"),
        (lambda m: {"cluster_centroids": np.zeros((2, 3))}, "cluster_centroids is 3 wide"),
        (lambda m: {"item_embeddings": np.zeros((5, 0))}, "needs >= 1 x 1"),
        (lambda m: {"item_embeddings": np.array([[1, "a"]] * 5, dtype=object)}, "dtype object"),
        (lambda m: {"item_biases": np.array([True] * 5)}, "dtype bool"),
        (lambda m: {"item_biases": np.full(5, np.inf)}, "item_biases holds NaN or infinity"),
        (lambda m: {"feature_embeddings": np.full((3, 8), np.nan)}, "feature_embeddings holds NaN"),
        (lambda m: {"version": 0}, "version 0 is not an integer >= 1"),
        (lambda m: {"version": True}, "version True"),
        (lambda m: {"metrics": {"auc": float("nan")}}, "metrics\\['auc'\\] is not finite"),
        (lambda m: {"metrics": {"auc": "high"}}, "not a number"),
        (lambda m: {"config": {"f": object()}}, "config is not JSON-compatible"),
        (
            lambda m: {"item_features": csr([0, 1, 1, 1, 1, 1], [7], [1.0])},
            "item_features_indices points outside",
        ),
        (
            lambda m: {"item_features": csr([0, 2, 1, 1, 1, 1], [0], [1.0])},
            "never decrease",
        ),
        (
            lambda m: {"item_features": csr([0, 1, 1, 1, 1, 1], [0], [np.nan])},
            "item_features_data holds NaN",
        ),
        (lambda m: {"item_features": csr([0, 0, 0], [], [])}, "expected 6"),
    ],
)
def test_inconsistent_models_are_refused(change: Any, match: str) -> None:
    model = make_model(n_items=5, dim=8, n_features=3, clusters=2)
    with rejected(match):
        dataclasses.replace(model, **change(model))


def test_inconsistent_arrays_in_the_bytes_are_refused() -> None:
    # The same checks guard the byte path: widths of two arrays disagree in the header.
    model = make_model()
    arrays = model.arrays()
    arrays["user_embeddings"] = np.zeros((4, 7), np.float32)
    header = json.loads(json.dumps(_header()))
    with rejected("model v1 refused: user_embeddings is 7 wide"):
        ModelArtifact.from_bytes(pack(header, list(arrays.items())))


# --- chunks and manifests ---------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 999, 1000, 1001, 3000, 3001])
def test_split_covers_the_bytes_in_order(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    chunks = split(4, data, chunk_bytes=1000)
    assert len(chunks) == -(-size // 1000)
    assert b"".join(c.data for c in chunks) == data
    assert [(c.version, c.index, c.count) for c in chunks] == [
        (4, i, len(chunks)) for i in range(len(chunks))
    ]
    assert all(c.sha256 == hashlib.sha256(c.data).hexdigest() for c in chunks)
    assert all(len(c.data) <= 1000 for c in chunks)


def test_split_refuses_chunks_over_the_limit() -> None:
    with pytest.raises(ValueError, match="chunk_bytes"):
        split(1, b"x", chunk_bytes=MAX_CHUNK_BYTES + 1)


def published(
    model: ModelArtifact, chunk_bytes: int = 4096
) -> tuple[ModelManifest, list[ModelChunk]]:
    data = model.to_bytes()
    chunks = split(model.version, data, chunk_bytes)
    return manifest_for(model, data, len(chunks)), chunks


def test_assemble_returns_the_published_model() -> None:
    model = make_model(version=3, n_items=300, dim=16)
    manifest, chunks = published(model)
    assert manifest.chunk_count > 3
    assert manifest.shapes == model.shapes()
    assert_same(model, assemble(manifest, {c.index: c for c in chunks}))


def test_every_flipped_byte_is_caught() -> None:
    manifest, chunks = published(make_model(version=7, n_items=60), chunk_bytes=1024)
    rng = np.random.default_rng(1)
    for _ in range(50):
        index = int(rng.integers(len(chunks)))
        position = int(rng.integers(len(chunks[index].data)))
        data = bytearray(chunks[index].data)
        data[position] ^= 1 << int(rng.integers(8))
        by_index = {c.index: c for c in chunks}
        by_index[index] = dataclasses.replace(chunks[index], data=bytes(data))
        with rejected(f"model v7 refused: chunk {index} of {len(chunks)} sha256 mismatch"):
            assemble(manifest, by_index)
        # A forger who also fixes the chunk's own checksum is caught by the artifact's.
        by_index[index] = ModelChunk.of(7, index, len(chunks), bytes(data))
        with rejected("model v7 refused: artifact sha256 mismatch"):
            assemble(manifest, by_index)


def test_assemble_refusals_name_the_problem() -> None:
    model = make_model(version=7, n_items=60)
    manifest, chunks = published(model, chunk_bytes=1024)
    n = len(chunks)
    full = {c.index: c for c in chunks}
    cases: list[tuple[ModelManifest, dict[int, ModelChunk], str]] = [
        (manifest, {}, "manifest without chunks"),
        (manifest, {i: c for i, c in full.items() if i != 1}, f"chunk 1 of {n} missing"),
        (
            manifest,
            {**full, 0: ModelChunk.of(7, 0, n + 1, chunks[0].data)},
            f"chunk 0 of {n} says there are {n + 1} chunks",
        ),
        (
            manifest,
            {**full, n - 1: ModelChunk.of(7, n - 1, n, chunks[-1].data[:-3])},
            "artifact is .* bytes, manifest says",
        ),
        (dataclasses.replace(manifest, format="npz/1"), full, "format 'npz/1'"),
        (
            dataclasses.replace(manifest, shapes={**manifest.shapes, "item_biases": (61,)}),
            full,
            r"shapes differ from the manifest: item_biases \[60\] vs manifest \[61\]",
        ),
        (
            dataclasses.replace(manifest, shapes={"item_embeddings": (60, 8)}),
            full,
            "shapes differ",
        ),
        (dataclasses.replace(manifest, config='{"loss": "bpr"}'), full, "config differs"),
        (dataclasses.replace(manifest, metrics={"auc": 1.0}), full, "metrics differ"),
    ]
    for bad_manifest, chunks_given, match in cases:
        with rejected("model v7 refused: " + match):
            assemble(bad_manifest, chunks_given)


def test_a_manifest_cannot_relabel_another_version() -> None:
    manifest, chunks = published(make_model(version=7))
    relabelled = [ModelChunk.of(8, c.index, c.count, c.data) for c in chunks]
    with rejected("model v8 refused: the artifact inside is v7"):
        assemble(dataclasses.replace(manifest, version=8), {c.index: c for c in relabelled})


def test_chunk_keys_parse_back() -> None:
    assert parse_chunk_key(model_chunk_key(12, 0)) == (12, 0)
    assert parse_chunk_key(model_chunk_key(1, 345)) == (1, 345)
    for key in (b"manifest", b"chunk/0/1", b"chunk/01/1", b"chunk/1/x", b"chunk/1/2/3", b""):
        assert parse_chunk_key(key) is None, key


# --- the reader's rules: order, versions, memory ----------------------------------------


def messages(
    model: ModelArtifact, *, chunk_bytes: int = 4096, manifest: ModelManifest | None = None
) -> list[tuple[bytes, bytes]]:
    codec = default_codec()
    announced, chunks = published(model, chunk_bytes)
    out = [
        (model_chunk_key(c.version, c.index), codec.encode("ModelChunk", c.to_dict()))
        for c in chunks
    ]
    return [
        *out,
        (MODEL_MANIFEST_KEY, codec.encode("ModelManifest", (manifest or announced).to_dict())),
    ]


def feed_all(assembler: ModelAssembler, msgs: Sequence[tuple[bytes, bytes | None]]) -> list[Any]:
    outcomes = [assembler.feed(key, value, offset) for offset, (key, value) in enumerate(msgs)]
    return [o for o in outcomes if o is not None]


def test_newer_models_replace_older_and_older_ones_are_refused() -> None:
    assembler = ModelAssembler()
    (first,) = feed_all(assembler, messages(make_model(1)))
    (second,) = feed_all(assembler, messages(make_model(2, seed=2)))
    assert (first.version, second.version, assembler.current_version) == (1, 2, 2)
    (again,) = feed_all(assembler, messages(make_model(1)))
    assert again == Refusal(1, "model v1 refused: not newer than the current v2", again.offset)
    (same,) = feed_all(assembler, messages(make_model(2)))
    assert isinstance(same, Refusal) and "not newer than the current v2" in same.reason
    assert assembler.current_version == 2


def test_a_refused_model_leaves_the_current_one_in_force() -> None:
    assembler = ModelAssembler()
    feed_all(assembler, messages(make_model(1)))
    manifest, chunks = published(make_model(2))
    tampered = dataclasses.replace(chunks[0], data=chunks[0].data[:-1] + b"\x01")
    codec = default_codec()
    outcomes = feed_all(
        assembler,
        [
            (model_chunk_key(2, 0), codec.encode("ModelChunk", tampered.to_dict())),
            (MODEL_MANIFEST_KEY, codec.encode("ModelManifest", manifest.to_dict())),
        ],
    )
    assert [type(o) for o in outcomes] == [Refusal]
    assert outcomes[0].version == 2 and "sha256 mismatch" in outcomes[0].reason
    assert assembler.current_version == 1
    (third,) = feed_all(assembler, messages(make_model(3)))
    assert isinstance(third, ModelArtifact) and assembler.current_version == 3


def test_manifest_before_its_chunks_is_refused() -> None:
    assembler = ModelAssembler()
    msgs = messages(make_model(4))
    manifest, chunks = msgs[-1], msgs[:-1]
    (early,) = feed_all(assembler, [manifest, *chunks])
    assert early.version == 4 and "manifest without chunks" in early.reason
    assert assembler.current_version == 0
    (late,) = feed_all(assembler, [manifest])  # announced again, now after its chunks
    assert isinstance(late, ModelArtifact) and late.version == 4


def test_tombstones_and_inventory() -> None:
    assembler = ModelAssembler(verify=False)
    feed_all(assembler, messages(make_model(1, n_items=200), chunk_bytes=2048))
    feed_all(assembler, [(model_chunk_key(9, 0), b"junk")])  # orphan of a failed attempt
    count = len(assembler.live_chunks[1])
    assert count > 1 and assembler.published_version == 1 and assembler.next_version == 10
    feed_all(assembler, [(model_chunk_key(1, i), None) for i in range(count)])
    assert set(assembler.live_chunks) == {9}
    assert assembler.current_version == 0  # inventory only: nothing loaded


def test_unreadable_messages_are_refused_with_their_reason() -> None:
    assembler = ModelAssembler()
    model_msgs = messages(make_model(5))
    key, chunk_value = model_msgs[0]
    outcomes = feed_all(
        assembler,
        [
            (b"weights.bin", b"\x80\x04payload"),
            (MODEL_MANIFEST_KEY, b"\x80\x04\x95pickle"),
            (model_chunk_key(5, 3), chunk_value),  # chunk 0's record under chunk 3's key
        ],
    )
    assert [o.version for o in outcomes] == [None, None, 5]
    assert "unexpected key" in outcomes[0].reason
    assert outcomes[1].reason.startswith("model refused: unreadable manifest")
    assert "key of chunk 3 holds chunk 0 of v5" in outcomes[2].reason


def test_pending_chunks_are_bounded() -> None:
    assembler = ModelAssembler(max_pending_bytes=10_000)
    outcomes = feed_all(assembler, messages(make_model(1, n_items=1000), chunk_bytes=4096))
    over = [o for o in outcomes if "byte buffer" in o.reason]
    assert over and all(o.version == 1 for o in over)
    assert assembler.current_version == 0
    assert assembler._pending_bytes <= 10_000


def test_accepting_a_model_frees_older_pending_chunks() -> None:
    assembler = ModelAssembler()
    orphan = messages(make_model(2))[:-1]  # chunks of v2, never announced
    feed_all(assembler, orphan)
    assert assembler._pending_bytes > 0
    feed_all(assembler, messages(make_model(3)))
    assert assembler._pending_bytes == 0 and assembler.current_version == 3
