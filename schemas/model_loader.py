"""Loading the model in force from the ``models`` topic, once or continuously.

Readers assign themselves partition 0 from the beginning, with no consumer group (nothing
is committed: every reader rebuilds from the compacted topic), and feed each message to a
:class:`~schemas.model_assembler.ModelAssembler`. What "in force" means: the newest
*valid* model. A newer manifest that fails verification is refused, reported, and the
previous model stays in force. Compaction keeps only the newest manifest, so a fresh reader
can fall back to an older valid version only while its manifest is still in the log.

Example::

    model = load_latest(KafkaSettings(), Catalogue())            # None if none is valid

    follower = ModelFollower(kafka, catalogue, on_model=swap_in,
                             on_refused=lambda version, why: log.warning(why))
    follower.start()
    follower.wait_caught_up(30)
    ...
    follower.stop()
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from schemas.artifact import ModelArtifact
from schemas.catalogue import MODELS_MAX_MESSAGE_BYTES, Catalogue
from schemas.errors import BrokerUnavailable, ConfigError
from schemas.model_assembler import DEFAULT_MAX_PENDING_BYTES, ModelAssembler, Outcome, Refusal
from schemas.producer import BrokerWatch
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

RefusalHandler = Callable[[int | None, str], None]


class ModelTopicReader:
    """A consumer of partition 0 of ``models`` from its first offset; :meth:`poll` returns
    (the assembler's outcome for one message, whether the end of the log was reached)."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue, assembler: ModelAssembler):
        self.topic = catalogue.topic("models").name
        self.assembler = assembler
        self._kafka = kafka
        self._next = OFFSET_BEGINNING
        self.replaced = 0
        """How many times an orphaned consumer was replaced (see :meth:`_replace_if_orphaned`)."""
        self._watch = BrokerWatch()
        self._consumer = self._new_consumer()

    def _new_consumer(self) -> Consumer:
        consumer = Consumer(
            {
                **self._kafka.client_config(),
                # librdkafka insists on a group id, but assign() never joins the group and
                # nothing is committed, so no group state is created on the broker.
                "group.id": f"nearline-model-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                # Fetch a whole chunk at once instead of growing the fetch size by retrying.
                "fetch.message.max.bytes": MODELS_MAX_MESSAGE_BYTES,
                **self._watch.config(),
            }
        )
        consumer.assign([TopicPartition(self.topic, 0, self._next)])
        return consumer

    def _replace_if_orphaned(self) -> None:
        """A consumer that lost every broker for good (librdkafka #5301, see
        :class:`~schemas.producer.BrokerWatch`) is replaced by one reading on from the next
        offset, so that new models keep arriving after a broker restart."""
        if not self._watch.orphaned():
            return
        old = self._consumer
        self._watch = BrokerWatch()
        self._consumer = self._new_consumer()
        self.replaced += 1
        # Closing a consumer without brokers can take its timeouts: not on this thread.
        threading.Thread(target=old.close, name="orphaned-model-reader", daemon=True).start()
        log.warning(
            "reading %s: the consumer had lost every broker (librdkafka #5301, after a "
            "broker restart): replaced it, reading on from offset %s",
            self.topic,
            self._next,
        )

    def check_topic(self, timeout: float, grace: float = 5.0) -> None:
        """Raise :class:`ConfigError` if the topic does not exist (a reader would wait forever).

        A topic created a moment ago can be unknown to the broker's metadata for a little
        while, so "unknown" is only believed after ``grace`` seconds of asking again.
        """
        deadline = time.monotonic() + min(grace, timeout)
        while True:
            try:
                self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                unknown = isinstance(error, KafkaError) and error.code() in (
                    KafkaError._UNKNOWN_PARTITION,
                    KafkaError._UNKNOWN_TOPIC,
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    # A topic created a moment ago may have no leader elected yet.
                    KafkaError.NOT_LEADER_FOR_PARTITION,
                    KafkaError.LEADER_NOT_AVAILABLE,
                )
                if not unknown:
                    raise BrokerUnavailable(f"could not read {self.topic}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"topic {self.topic} does not exist; create the catalogue's topics "
                        "(schemas.admin.ensure_topics)"
                    ) from exc
                time.sleep(0.2)

    def poll(self, timeout: float) -> tuple[Outcome, bool]:
        self._replace_if_orphaned()
        msg = self._consumer.poll(timeout)
        if msg is None:
            return None, False
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None, True
            # librdkafka retries connections and fetches by itself; say so and carry on.
            log.warning("reading %s: %s", self.topic, error.str())
            return None, False
        offset = msg.offset()
        if offset is not None:
            self._next = offset + 1
        return self.assembler.feed(msg.key(), msg.value(), offset), False

    def close(self) -> None:
        self._consumer.close()


@dataclass(frozen=True, slots=True)
class ModelScan:
    """What one pass over the ``models`` topic found."""

    model: ModelArtifact | None
    """The newest valid model (None if there is none, or when scanned with verify=False)."""
    refusals: tuple[Refusal, ...]
    """Refusals after the model in force was announced: what a reader should know about."""
    published_version: int
    """Newest version any manifest announced, valid or not (0 if none)."""
    next_version: int
    """The version to publish a new model as."""
    live_chunks: Mapping[int, frozenset[int]]
    """Chunk indices by version whose keys still hold data (cleanup candidates)."""


def _catch_up(
    reader: ModelTopicReader, deadline: float
) -> tuple[ModelArtifact | None, list[Refusal]]:
    model: ModelArtifact | None = None
    refusals: list[Refusal] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerUnavailable(f"could not read {reader.topic} to its end in time")
        outcome, at_end = reader.poll(min(remaining, 0.5))
        if isinstance(outcome, ModelArtifact):
            model = outcome
        elif isinstance(outcome, Refusal):
            refusals.append(outcome)
        if at_end:
            # Only what came after the model in force matters: older refusals are history.
            since = reader.assembler.current_offset
            return model, [r for r in refusals if since is None or (r.offset or 0) > since]


def scan_models(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    *,
    timeout: float = 60.0,
    verify: bool = True,
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
) -> ModelScan:
    """Read ``models`` from its start to its end; ``verify=False`` only takes inventory.

    Example::

        scan = scan_models(kafka, catalogue)
        candidate = dataclasses.replace(trained, version=scan.next_version)
        if scan.model is None or better(candidate, scan.model):
            publish_model(kafka, catalogue, candidate)
    """
    assembler = ModelAssembler(verify=verify, max_pending_bytes=max_pending_bytes)
    reader = ModelTopicReader(kafka, catalogue, assembler)
    try:
        reader.check_topic(timeout)
        model, refusals = _catch_up(reader, time.monotonic() + timeout)
    finally:
        reader.close()
    return ModelScan(
        model=model,
        refusals=tuple(refusals),
        published_version=assembler.published_version,
        next_version=assembler.next_version,
        live_chunks={v: frozenset(ixs) for v, ixs in assembler.live_chunks.items()},
    )


def load_latest(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    *,
    timeout: float = 60.0,
    on_refused: RefusalHandler | None = None,
) -> ModelArtifact | None:
    """The newest valid model on ``models``, or None; refusals are logged and passed on.

    Example::

        model = load_latest(KafkaSettings(), Catalogue(), timeout=30)
    """
    scan = scan_models(kafka, catalogue, timeout=timeout)
    for refusal in scan.refusals:
        log.warning("%s", refusal.reason)
        if on_refused is not None:
            on_refused(refusal.version, refusal.reason)
    return scan.model


def latest_version(kafka: KafkaSettings, catalogue: Catalogue, *, timeout: float = 60.0) -> int:
    """Newest version announced on ``models`` (0 if none), without loading any model."""
    return scan_models(kafka, catalogue, timeout=timeout, verify=False).published_version


def _ignore_refusal(version: int | None, reason: str) -> None:
    """Default refusal handler: the follower logs every refusal anyway."""


class ModelFollower:
    """Keeps up with ``models`` in a background thread and hands over each newer valid model.

    After reading the log to its end it calls ``on_model`` once with the newest valid model
    (if any) and ``on_refused`` for what was refused since; from then on, for each new
    manifest, ``on_model`` with the verified model if newer than the current one, else
    ``on_refused(version, reason)``. Callbacks run on the follower's thread; an error in one
    is logged and the follower carries on.

    Example::

        with ModelFollower(kafka, catalogue, on_model=holder.swap) as follower:
            follower.wait_caught_up(30)
            ...
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        catalogue: Catalogue,
        on_model: Callable[[ModelArtifact], None],
        on_refused: RefusalHandler = _ignore_refusal,
        *,
        poll_timeout: float = 0.5,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        self._kafka, self._catalogue = kafka, catalogue
        self._on_model, self._on_refused = on_model, on_refused
        self._poll_timeout = poll_timeout
        self._assembler = ModelAssembler(max_pending_bytes=max_pending_bytes)
        self._stopping = threading.Event()
        self._caught_up = threading.Event()
        self._thread: threading.Thread | None = None
        self._model: ModelArtifact | None = None

    @property
    def model(self) -> ModelArtifact | None:
        """The newest model handed to ``on_model`` (None: none yet)."""
        return self._model

    @property
    def current_version(self) -> int:
        """Version of the newest model handed to ``on_model`` (0: none yet)."""
        return 0 if self._model is None else self._model.version

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("ModelFollower.start() was already called")
        self._thread = threading.Thread(
            target=self._run, name="nearline-model-follower", daemon=True
        )
        self._thread.start()

    def wait_caught_up(self, timeout: float | None = None) -> bool:
        """Wait until the log was read to its end once (and the model in force handed over)."""
        return self._caught_up.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ModelFollower:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        reader = None
        while reader is None and not self._stopping.is_set():
            try:
                reader = ModelTopicReader(self._kafka, self._catalogue, self._assembler)
            except Exception:
                log.exception("model follower: cannot create a consumer; retrying")
                self._stopping.wait(5.0)
        if reader is None:
            return
        try:
            try:
                reader.check_topic(timeout=10.0)
            except Exception as exc:
                # Not fatal: the topic may be created later, and the consumer will pick it up.
                log.warning("model follower: %s; waiting for it", exc)
            self._follow(reader)
        finally:
            reader.close()

    def _follow(self, reader: ModelTopicReader) -> None:
        model: ModelArtifact | None = None
        refusals: list[Refusal] = []
        while not self._stopping.is_set():
            try:
                outcome, at_end = reader.poll(self._poll_timeout)
            except Exception:
                # A bug or a message nobody anticipated must not end the follower silently.
                log.exception("model follower: a message could not be processed; skipping it")
                continue
            if self._caught_up.is_set():
                self._hand_over(outcome)
                continue
            if isinstance(outcome, ModelArtifact):
                model = outcome
            elif isinstance(outcome, Refusal):
                refusals.append(outcome)
            if at_end:
                since = self._assembler.current_offset
                self._hand_over(model)
                for refusal in refusals:
                    if since is None or (refusal.offset or 0) > since:
                        self._hand_over(refusal)
                model, refusals = None, []
                self._caught_up.set()

    def _hand_over(self, outcome: Outcome) -> None:
        try:
            if isinstance(outcome, ModelArtifact):
                log.info("model v%d in force", outcome.version)
                self._model = outcome
                self._on_model(outcome)
            elif isinstance(outcome, Refusal):
                log.warning("%s", outcome.reason)
                self._on_refused(outcome.version, outcome.reason)
        except Exception:
            log.exception("model follower: callback failed for %s", _describe(outcome))


def _describe(outcome: Any) -> str:
    if isinstance(outcome, ModelArtifact):
        return f"model v{outcome.version}"
    return f"refusal of v{getattr(outcome, 'version', None)}"
