"""Reading the ``models`` topic message by message: which model is in force, which were refused.

:class:`ModelAssembler` holds no Kafka client. Readers feed it each message of partition 0
in offset order (key, value, offset); it buffers the chunks of versions newer than the one
in force, and on each manifest either returns the verified :class:`ModelArtifact` (which
is then in force) or a :class:`Refusal`. Both the one-shot loader and the long-running
follower use it, so they refuse the same things with the same words.

Example::

    assembler = ModelAssembler()
    for msg in messages:
        outcome = assembler.feed(msg.key(), msg.value(), msg.offset())
        if isinstance(outcome, ModelArtifact):
            swap_in(outcome)
        elif isinstance(outcome, Refusal):
            log.warning(outcome.reason)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.artifact import ModelArtifact, ModelRejected
from schemas.catalogue import MODEL_MANIFEST_KEY
from schemas.codec import Codec, default_codec
from schemas.errors import SchemaError
from schemas.events import ModelChunk, ModelManifest
from schemas.model_chunks import assemble, parse_chunk_key

log = logging.getLogger(__name__)

GiB = 1024**3
DEFAULT_MAX_PENDING_BYTES = 2 * GiB
"""Chunk bytes a reader buffers for versions not yet announced. Chunks beyond it are refused
so that a flood of chunks (or a crashed publisher's leftovers) cannot exhaust memory."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A model (or a message about one) that was not accepted, and why."""

    version: int | None
    """The model version concerned; None when not even that could be read."""
    reason: str
    """The whole explanation, e.g. ``model v7 refused: chunk 2 of 3 sha256 mismatch``."""
    offset: int | None = None
    """Offset of the message that decided it."""


Outcome = ModelArtifact | Refusal | None


class ModelAssembler:
    """State of one reader of the ``models`` topic.

    ``verify=False`` keeps only the inventory (versions seen, live chunk keys) and never
    buffers chunk data: what a publisher needs to choose a version and clean up.
    """

    def __init__(
        self,
        *,
        current_version: int = 0,
        verify: bool = True,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        codec: Codec | None = None,
    ) -> None:
        self.current_version = current_version
        """Version of the model in force (0: none)."""
        self.current_offset: int | None = None
        """Offset of the manifest that put the current model in force."""
        self.published_version = 0
        """Newest version any readable manifest announced, valid or not."""
        self.highest_version = 0
        """Newest version seen in a manifest or a chunk key."""
        self.live_chunks: dict[int, set[int]] = {}
        """Chunk indices by version whose key holds a value (not deleted by a tombstone)."""
        self._verify = verify
        self._max_pending = max_pending_bytes
        self._pending: dict[int, dict[int, ModelChunk]] = {}
        self._pending_bytes = 0
        self._codec = codec or default_codec()

    @property
    def next_version(self) -> int:
        """The version a new model should get: above anything seen, even unannounced chunks."""
        return self.highest_version + 1

    def feed(self, key: bytes | None, value: bytes | None, offset: int | None = None) -> Outcome:
        """Take the next message; returns a newly accepted model, a refusal, or None."""
        if key == MODEL_MANIFEST_KEY:
            # A deleted manifest withdraws nothing that is loaded; readers keep their model.
            return None if value is None else self._manifest(value, offset)
        parsed = parse_chunk_key(key or b"")
        if parsed is None:
            return Refusal(None, f"unexpected key {key!r:.60} on the models topic", offset)
        version, index = parsed
        if value is None:
            self._discard(version, index)
            return None
        self.live_chunks.setdefault(version, set()).add(index)
        self.highest_version = max(self.highest_version, version)
        if not self._verify or version <= self.current_version:
            return None
        return self._chunk(version, index, value, offset)

    def _discard(self, version: int, index: int) -> None:
        indices = self.live_chunks.get(version)
        if indices is not None:
            indices.discard(index)
            if not indices:
                del self.live_chunks[version]
        self._discard_pending(version, index)

    def _chunk(self, version: int, index: int, value: bytes, offset: int | None) -> Outcome:
        try:
            chunk = ModelChunk.from_dict(self._codec.decode(ModelChunk.SCHEMA, value))
        except (SchemaError, RecursionError) as exc:
            return self._refuse(version, f"chunk {index} is unreadable: {exc}", offset)
        if (chunk.version, chunk.index) != (version, index):
            detail = f"key of chunk {index} holds chunk {chunk.index} of v{chunk.version}"
            return self._refuse(version, detail, offset)
        self._discard_pending(version, index)
        if self._pending_bytes + len(chunk.data) > self._max_pending:
            detail = f"chunk {index} dropped: over the {self._max_pending} byte buffer"
            return self._refuse(version, detail, offset)
        self._pending.setdefault(version, {})[index] = chunk
        self._pending_bytes += len(chunk.data)
        return None

    def _discard_pending(self, version: int, index: int) -> None:
        # A rewritten key replaces the older record, exactly as compaction would.
        old = self._pending.get(version, {}).pop(index, None)
        if old is not None:
            self._pending_bytes -= len(old.data)

    def _manifest(self, value: bytes, offset: int | None) -> Outcome:
        try:
            manifest = ModelManifest.from_dict(self._codec.decode(ModelManifest.SCHEMA, value))
        except (SchemaError, RecursionError) as exc:
            return Refusal(None, f"model refused: unreadable manifest: {exc}", offset)
        v = manifest.version
        self.published_version = max(self.published_version, v)
        self.highest_version = max(self.highest_version, v)
        if not self._verify:
            return None
        chunks = self._take(v)
        if v <= self.current_version:
            return self._refuse(v, f"not newer than the current v{self.current_version}", offset)
        try:
            artifact = assemble(manifest, chunks)
        except ModelRejected as exc:
            return Refusal(v, str(exc), offset)
        self.current_version, self.current_offset = v, offset
        for old in [version for version in self._pending if version <= v]:
            self._take(old)
        return artifact

    def _take(self, version: int) -> Mapping[int, ModelChunk]:
        chunks = self._pending.pop(version, {})
        self._pending_bytes -= sum(len(c.data) for c in chunks.values())
        return chunks

    @staticmethod
    def _refuse(version: int, detail: str, offset: int | None) -> Refusal:
        return Refusal(version, str(ModelRejected(detail, version)), offset)
