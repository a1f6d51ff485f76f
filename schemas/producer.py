"""Encode events and produce them to their topics: keyed by user, idempotent, acks=all,
batched. Shared by the CLI, the MovieLens replay and the HTTP API's ``POST /v1/events``.

Example::

    from schemas.catalogue import Catalogue
    from schemas.events import ClickEvent, Context
    from schemas.producer import EventProducer
    from schemas.settings import KafkaSettings

    with EventProducer(KafkaSettings(), Catalogue()) as producer:
        producer.send_event(ClickEvent(user_id="u1", item_id="i9", surface="row1",
                                       position=3, context=Context("s1", "tv")))
    # leaving the block flushes; a failed delivery raises DeliveryError
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, Message, Producer

from schemas.catalogue import Catalogue
from schemas.codec import Codec, default_codec
from schemas.errors import NearlineError
from schemas.events import Event
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

# Throughput settings. linger.ms lets librdkafka fill batches (the replay produces 100k+
# events/s); lz4 roughly halves the bytes of Avro events at little CPU cost.
PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "enable.idempotence": True,  # implies acks=all and bounded in-flight requests
    "acks": "all",
    "linger.ms": 10,
    "batch.size": 1_000_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
}


class DeliveryError(NearlineError):
    """One or more records were not acknowledged by the broker."""


class BrokerWatch:
    """Tells when a librdkafka client has no broker left to talk to, and never will again.

    librdkafka 2.16 (bundled with confluent-kafka 2.16.1) forgets every broker it knows when
    a Metadata response lists no broker, and then does not re-bootstrap: the client never
    connects again, whatever ``metadata.recovery.rebootstrap.trigger.ms`` says
    (confluentinc/librdkafka#5301, unfixed in 2.16.0). A KRaft broker that is the only one
    sends exactly such a response during its controlled shutdown (a SIGTERM, an operator's
    restart): it has fenced itself out of the cluster's metadata but still answers for a
    few milliseconds. A client whose Metadata request lands in that window is orphaned: a
    producer's records wait forever, a consumer's group coordinator request sits in its
    queue ("1 out-queue"). Seen in ``tests/reliability/test_broker_restart.py``.

    The watch is the client's statistics callback (see :meth:`config`); librdkafka lists
    the brokers it knows in every statistics report, each with its ``source``. A client
    whose reports have listed no ``configured`` (bootstrap) or ``learned`` broker for
    ``grace_s`` seconds is orphaned: while a broker is merely down, librdkafka keeps it, or
    the bootstrap servers it re-bootstraps with, in that list. The owner replaces the
    client (see :class:`EventProducer` and ``batch.sink.consumer``).

    Statistics are served by ``poll()`` / ``consume()``, like every callback.
    """

    INTERVAL_MS = 1000

    def __init__(self, grace_s: float = 10.0) -> None:
        self.grace_s = grace_s
        self._lost_since: float | None = None

    def config(self) -> dict[str, Any]:
        """The client configuration that installs the watch."""
        return {"statistics.interval.ms": self.INTERVAL_MS, "stats_cb": self}

    def __call__(self, stats: str) -> None:
        # A substring test, not a JSON parse: the report lists every partition too, and
        # comes every second from every client.
        if '"source":"learned"' in stats or '"source":"configured"' in stats:
            self._lost_since = None
        elif self._lost_since is None:
            self._lost_since = time.monotonic()

    def orphaned(self) -> bool:
        lost = self._lost_since
        return lost is not None and time.monotonic() - lost >= self.grace_s


def purge(producer: Producer, timeout: float = 10.0) -> None:
    """Take back everything ``producer`` holds (see :class:`BrokerWatch`): each record comes
    back through its delivery callback, as purged "from the queue" (never sent, safe to
    send again) or "in flight" (possibly written)."""
    producer.purge(in_queue=True, in_flight=True)
    deadline = time.monotonic() + timeout
    while len(producer) and time.monotonic() < deadline:
        producer.poll(0.1)


def flush_watching(
    flush: Callable[[float], int], timeout: float, replace_if_orphaned: Callable[[], None]
) -> int:
    """``flush(timeout)`` in slices of at most a second, calling ``replace_if_orphaned``
    between them, so that a producer which lost every broker is replaced while we wait (see
    :class:`BrokerWatch`). ``flush`` must flush the current producer (it may be replaced).
    Returns what is still unacknowledged at the end."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = flush(max(0.0, min(1.0, deadline - time.monotonic())))
        if not remaining or time.monotonic() >= deadline:
            return remaining
        replace_if_orphaned()


def reproduce(producer: Producer, msg: Message, on_delivery: Any = None) -> None:
    """Queue a purged record on ``producer`` as it was: topic, partition (which keeps each
    key's records in order), key, value, headers and creation time."""
    kind, ts = msg.timestamp()
    extra: dict[str, Any] = {"headers": msg.headers()} if msg.headers() else {}
    if kind == TIMESTAMP_CREATE_TIME:
        extra["timestamp"] = ts
    partition = msg.partition()
    if partition is not None and partition >= 0:
        extra["partition"] = partition
    if on_delivery is not None:
        extra["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(str(msg.topic()), msg.value(), msg.key(), **extra)
            return
        except BufferError:
            producer.poll(0.05)


class DeliveryFailures:
    """The producer's delivery callback: counts and logs failed deliveries.

    A separate object, not a bound method of :class:`EventProducer`: librdkafka's producer
    holds its callback, so a bound method would make a reference cycle, and a producer no
    longer used would live on (connected, logging reconnect errors) until the cycle
    collector ran.
    """

    def __init__(self) -> None:
        self.failed = 0
        self.failures: list[str] = []
        self.purged: list[Message] | None = None
        """While an orphaned producer is being replaced: the records it never sent."""

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        if self.purged is not None and err.code() == KafkaError._PURGE_QUEUE:
            self.purged.append(msg)  # never sent: the replacement sends it
            return
        self.failed += 1
        detail = f"{msg.topic()}: {err.str()}"
        if len(self.failures) < 100:
            self.failures.append(detail)
        log.error("delivery failed: %s", detail)


class EventProducer:
    """Produces events to the catalogue's topics; ``flush()`` reports lost deliveries."""

    def __init__(
        self,
        kafka: KafkaSettings,
        catalogue: Catalogue,
        codec: Codec | None = None,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.codec = codec or default_codec()
        self._deliveries = DeliveryFailures()
        # Delivery reports only for failures: a Python callback per delivered record would
        # cost more than encoding it (it halved throughput when measured).
        self._config = {
            **kafka.client_config(),
            **PRODUCER_DEFAULTS,
            **(config or {}),
            "on_delivery": self._deliveries,
            "delivery.report.only.error": True,
        }
        self._watch = BrokerWatch()
        self._producer = Producer({**self._config, **self._watch.config()})
        # Held while queueing and while replacing an orphaned producer, so that no record
        # is queued on the old one after its queue was taken over (send() and poll() may
        # run on different threads).
        self._lock = threading.Lock()
        self.replaced = 0
        """How many times an orphaned librdkafka producer was replaced (see BrokerWatch)."""
        self._topics = {t.value_schema: t.name for t in catalogue.event_topics}
        self._versions = {name: self.codec.registry.current(name) for name in self._topics}
        self.sent = 0

    def send(self, schema: str, record: Mapping[str, Any], *, validate: bool = True) -> None:
        """Encode ``record`` as a ``schema`` event (ClickEvent, BrowseEvent, ViewEvent) and
        queue it on its topic, keyed by ``user_id``.

        ``validate=True`` applies the same checks the consumers apply (raising
        :class:`~schemas.errors.SchemaError`), so that nothing invalid is ever produced by
        us; trusted callers that build records in code may skip it for speed.
        """
        try:
            topic = self._topics[schema]
        except KeyError:
            raise NearlineError(
                f"{schema!r} is not an event type; expected one of "
                f"{', '.join(sorted(self._topics))}"
            ) from None
        value = self.codec.encode(self._versions[schema], record, validate=validate)
        key = record["user_id"]
        with self._lock:
            try:
                self._producer.produce(topic, value, key.encode() if isinstance(key, str) else key)
            except BufferError:
                self._produce_when_room(topic, str(key).encode(), value)
            self.sent += 1
        if not self.sent & 1023:  # serve delivery reports every 1024 records
            self.poll(0)

    def send_event(self, event: Event) -> None:
        """Queue a domain event (see :mod:`schemas.events`)."""
        self.send(event.SCHEMA, event.to_dict())

    def _produce_when_room(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            # The local queue is full: serve delivery reports until there is room.
            self._producer.poll(0.05)
            self._replace_if_orphaned(locked=True)
            try:
                self._producer.produce(topic, value, key)
                return
            except BufferError:
                continue

    def _replace_if_orphaned(self, *, locked: bool = False) -> None:
        """Replace the librdkafka producer if it has lost every broker (see
        :class:`BrokerWatch`), handing the records it still holds to the new one.

        Nothing is sent twice: an orphaned producer has no connection, so it holds no
        request in flight; every record it holds was refused by the broker (the fenced
        broker answers "not leader") or never sent, and librdkafka reports it purged "from
        the queue". A record purged in flight (possibly written) is not sent again: it
        counts as failed, as a timed-out record would.
        """
        if not self._watch.orphaned():
            return
        if not locked:
            with self._lock:
                self._replace_if_orphaned(locked=True)
            return
        purged: list[Message] = []
        self._deliveries.purged = purged
        try:
            purge(self._producer)
        finally:
            self._deliveries.purged = None
        self._watch = BrokerWatch()
        self._producer = Producer({**self._config, **self._watch.config()})
        self.replaced += 1
        log.warning(
            "the Kafka producer had lost every broker (librdkafka #5301, after a broker "
            "restart): replaced it; %d queued records handed to the new one",
            len(purged),
        )
        for msg in purged:
            reproduce(self._producer, msg)

    @property
    def delivered(self) -> int:
        """Records acknowledged so far (exact after :meth:`flush`)."""
        return self.sent - self.failed - len(self._producer)

    @property
    def failed(self) -> int:
        """Records the broker did not acknowledge (exact after :meth:`flush`)."""
        return self._deliveries.failed

    @property
    def failures(self) -> list[str]:
        """The first 100 failures, as ``topic: error``."""
        return self._deliveries.failures

    def poll(self, timeout: float = 0) -> None:
        self._producer.poll(timeout)
        self._replace_if_orphaned()

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued record is acknowledged; raise if any was not."""
        remaining = flush_watching(
            lambda t: self._producer.flush(t), timeout, self._replace_if_orphaned
        )
        if remaining:
            raise DeliveryError(
                f"{remaining} records were still unacknowledged after {timeout:g} s; is the "
                "broker reachable (KAFKA_BOOTSTRAP_SERVERS)?"
            )
        if self.failed:
            raise DeliveryError(
                f"{self.failed} records were not delivered; first: {self.failures[0]}"
            )

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        else:  # still deliver what was queued, but let the original error win
            self._producer.flush(10)
