"""Cutting an artifact into ``ModelChunk`` records, describing it by a ``ModelManifest``, and
putting it back together with every check a reader owes the bytes it did not write.

Pure functions, no Kafka: the publisher and the loader call them, and unit tests too.

Example::

    data = artifact.to_bytes()
    chunks = split(artifact.version, data)
    manifest = manifest_for(artifact, data, len(chunks))
    same = assemble(manifest, {c.index: c for c in chunks})   # raises ModelRejected
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from schemas.artifact import FORMAT, ModelArtifact, ModelRejected, digest
from schemas.events import MAX_CHUNK_BYTES, ModelChunk, ModelManifest

_CHUNK_KEY = re.compile(rb"chunk/([1-9][0-9]{0,18})/(0|[1-9][0-9]{0,9})")


def parse_chunk_key(key: bytes) -> tuple[int, int] | None:
    """(version, index) of a key made by :func:`schemas.catalogue.model_chunk_key`, else None."""
    match = _CHUNK_KEY.fullmatch(key)
    return (int(match[1]), int(match[2])) if match else None


def split(version: int, data: bytes, chunk_bytes: int = MAX_CHUNK_BYTES) -> list[ModelChunk]:
    """``data`` as consecutive chunks of at most ``chunk_bytes`` (at least one chunk)."""
    if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk_bytes must be within 1..{MAX_CHUNK_BYTES}")
    pieces = [data[at : at + chunk_bytes] for at in range(0, len(data), chunk_bytes)] or [b""]
    return [ModelChunk.of(version, i, len(pieces), piece) for i, piece in enumerate(pieces)]


def manifest_for(artifact: ModelArtifact, data: bytes, chunk_count: int) -> ModelManifest:
    """The manifest announcing ``artifact``, whose bytes are ``data`` in ``chunk_count`` chunks."""
    return ModelManifest(
        version=artifact.version,
        sha256=digest(data),
        total_size=len(data),
        chunk_count=chunk_count,
        format=FORMAT,
        shapes=artifact.shapes(),
        config=json.dumps(artifact.config, sort_keys=True),
        cutoff=json.dumps(artifact.cutoff, sort_keys=True),
        metrics=dict(artifact.metrics),
        created_at=artifact.created_at,
    )


def _joined(manifest: ModelManifest, chunks: Mapping[int, ModelChunk]) -> bytes:
    count, v = manifest.chunk_count, manifest.version
    if not any(i in chunks for i in range(count)):
        raise ModelRejected("manifest without chunks (chunks must precede their manifest)", v)
    if manifest.total_size > count * MAX_CHUNK_BYTES:
        raise ModelRejected(f"total_size {manifest.total_size} cannot fit {count} chunks", v)
    for i in range(count):
        chunk = chunks.get(i)
        if chunk is None:
            raise ModelRejected(f"chunk {i} of {count} missing", v)
        if chunk.version != v or chunk.index != i:
            raise ModelRejected(
                f"chunk {i} of {count} is chunk {chunk.index} of v{chunk.version}", v
            )
        if chunk.count != count:
            raise ModelRejected(f"chunk {i} of {count} says there are {chunk.count} chunks", v)
        if hashlib.sha256(chunk.data).hexdigest() != chunk.sha256:
            raise ModelRejected(f"chunk {i} of {count} sha256 mismatch", v)
    data = b"".join(chunks[i].data for i in range(count))
    if len(data) != manifest.total_size:
        raise ModelRejected(
            f"artifact is {len(data)} bytes, manifest says {manifest.total_size}", v
        )
    if digest(data) != manifest.sha256:
        raise ModelRejected("artifact sha256 mismatch", v)
    return data


def assemble(manifest: ModelManifest, chunks: Mapping[int, ModelChunk]) -> ModelArtifact:
    """The verified artifact ``manifest`` announces, from ``chunks`` by index.

    Checks, in order: the format; every chunk present, of this version, with the manifest's
    count and its own sha256; total size; whole-artifact sha256; the artifact's own rules
    (see :mod:`schemas.artifact_checks`); and that version, shapes, config, cutoff and
    metrics agree with the manifest. Raises :class:`ModelRejected` at the first problem.
    """
    v = manifest.version
    if manifest.format != FORMAT:
        raise ModelRejected(f"format {manifest.format!r:.40} is not {FORMAT}", v)
    data = _joined(manifest, chunks)
    try:
        artifact = ModelArtifact.from_bytes(data)
    except ModelRejected as exc:
        raise ModelRejected(exc.detail, v) from exc
    if artifact.version != v:
        raise ModelRejected(f"the artifact inside is v{artifact.version}", v)
    shapes = artifact.shapes()
    wanted = {name: tuple(dims) for name, dims in manifest.shapes.items()}
    if shapes != wanted:
        diff = sorted(
            f"{name} {list(shapes.get(name, ()))} vs manifest {list(wanted.get(name, ()))}"
            for name in set(shapes) | set(wanted)
            if shapes.get(name) != wanted.get(name)
        )
        raise ModelRejected(f"shapes differ from the manifest: {'; '.join(diff)}", v)
    for name, announced in (("config", manifest.config), ("cutoff", manifest.cutoff)):
        if json.loads(announced) != getattr(artifact, name):
            raise ModelRejected(f"{name} differs from the manifest's", v)
    if dict(manifest.metrics) != artifact.metrics:
        raise ModelRejected("metrics differ from the manifest's", v)
    return artifact
