"""Reads the compacted ``recommendations`` topic into a :class:`RecommendationStore`.

Every partition is assigned from its first offset with no consumer group and nothing
committed, so each replica rebuilds the whole store from the topic on start and replicas
share no state. Per-message policy: a value that does not decode is logged with
topic[partition]@offset and skipped (serving only reads this topic; the writers own the
dead-letter path), a tombstone forgets the user. An unexpected error replaces the consumer,
which resumes at the message that failed (skipped after three attempts). So does a consumer
that lost every broker for good after a broker restart (librdkafka #5301, see
:class:`~schemas.producer.BrokerWatch`).

Example::

    reader = RecommendationReader(KafkaSettings(), Catalogue(), store)
    reader.start()
    reader.caught_up.wait(30)
    ...
    reader.stop()
"""

from __future__ import annotations

import logging
import threading
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from schemas.catalogue import Catalogue
from schemas.codec import Codec, default_codec
from schemas.errors import SchemaError
from schemas.events import RecommendationSet
from schemas.producer import BrokerWatch
from schemas.settings import KafkaSettings
from serving.recommendation_store import RecommendationStore

log = logging.getLogger(__name__)

RESTART_S = 2.0
"""Pause before a new consumer replaces one that failed."""
MAX_ATTEMPTS = 3
"""Attempts at one message before it is skipped (a bug, not bad data: that is skipped at once)."""


class Orphaned(Exception):
    """The consumer lost every broker for good; the next one resumes where it stopped."""


class RecommendationReader:
    """A background thread keeping ``store`` equal to the topic's latest set per user."""

    def __init__(
        self,
        kafka: KafkaSettings,
        catalogue: Catalogue,
        store: RecommendationStore,
        *,
        codec: Codec | None = None,
    ) -> None:
        self.topic = catalogue.topic("recommendations").name
        self.store = store
        self.skipped = 0
        self.restarts = 0
        self.replaced = 0
        """Consumers replaced after librdkafka #5301 orphaned them (see BrokerWatch)."""
        self.last_error: str | None = None
        self.caught_up = threading.Event()
        self._kafka = kafka
        self._codec = codec or default_codec()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="nearline-recommendation-reader", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _consumer(self, watch: BrokerWatch) -> Consumer:
        return Consumer(
            {
                **self._kafka.client_config(),
                # librdkafka requires a group id; assign() never joins it, nothing is committed.
                "group.id": f"nearline-serving-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                **watch.config(),
            }
        )

    def _partitions(self, consumer: Consumer) -> list[int]:
        """The topic's partitions, waiting (and saying so) while it does not exist."""
        while not self._stopping.is_set():
            try:
                meta = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                if meta is not None and meta.error is None and meta.partitions:
                    return sorted(meta.partitions)
                log.warning("topic %s not found yet; waiting for it", self.topic)
            except Exception as exc:  # the broker is away: librdkafka reconnects by itself
                log.warning("reading %s: %s; retrying", self.topic, exc)
            self._stopping.wait(2.0)
        return []

    def _run(self) -> None:
        # An unexpected error ends one consumer, never the reader: a replica whose store
        # silently stopped updating would serve stale sets with nothing to show for it.
        # The next consumer resumes at the message that failed, so nothing is skipped or
        # read twice; a message failing MAX_ATTEMPTS times is skipped, loudly.
        positions: dict[int, int] = {}
        failing: list[tuple[int, int]] = []
        while not self._stopping.is_set():
            try:
                self._read(positions, failing)
            except Orphaned as exc:
                self.replaced += 1
                log.warning("%s; replacing it", exc)
            except Exception as exc:
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("recommendation reader failed; resuming in %.0f s", RESTART_S)
                if len(failing) >= MAX_ATTEMPTS and len(set(failing[-MAX_ATTEMPTS:])) == 1:
                    partition, offset = failing[-1]
                    log.error(
                        "skipping %s[%d]@%d: it failed %d times",
                        self.topic,
                        partition,
                        offset,
                        MAX_ATTEMPTS,
                    )
                    positions[partition] = offset + 1
                    failing.clear()
                self._stopping.wait(RESTART_S)

    def _read(self, positions: dict[int, int], failing: list[tuple[int, int]]) -> None:
        watch = BrokerWatch()
        consumer = self._consumer(watch)
        try:
            partitions = self._partitions(consumer)
            consumer.assign(
                [
                    TopicPartition(self.topic, p, positions.get(p, OFFSET_BEGINNING))
                    for p in partitions
                ]
            )
            at_end: set[int] = set()
            while not self._stopping.is_set():
                for msg in consumer.consume(500, 0.5):
                    spot = (msg.partition() or 0, msg.offset() or 0)
                    try:
                        self._take(msg, at_end)
                    except Exception:
                        failing.append(spot)
                        raise
                    if msg.error() is None:
                        positions[spot[0]] = spot[1] + 1
                if watch.orphaned():
                    raise Orphaned(
                        f"reading {self.topic}: the consumer had lost every broker "
                        "(librdkafka #5301, after a broker restart)"
                    )
                if not self.caught_up.is_set() and at_end.issuperset(partitions):
                    self.store.caught_up = True
                    self.caught_up.set()
                    log.info("recommendations: %d users read from %s", len(self.store), self.topic)
        finally:
            if watch.orphaned():  # closing one without brokers can wait out its timeouts
                threading.Thread(target=consumer.close, daemon=True).start()
            else:
                consumer.close()

    def _take(self, msg: Message, at_end: set[int]) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition() or 0)
            else:
                log.warning("reading %s: %s", self.topic, error.str())
            return
        key, value = msg.key(), msg.value()
        if value is None:
            if key:
                self.store.remove(key.decode("utf-8", "replace"))
            return
        try:
            recs = RecommendationSet.from_dict(self._codec.decode(RecommendationSet.SCHEMA, value))
        except SchemaError as exc:
            self.skipped += 1
            log.warning(
                "skipping %s[%s]@%s: %s (%s)",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                exc.reason,
                exc,
            )
            return
        self.store.put(recs)
