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
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

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

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
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
        self._producer = Producer(
            {
                **kafka.client_config(),
                **PRODUCER_DEFAULTS,
                **(config or {}),
                "on_delivery": self._deliveries,
                "delivery.report.only.error": True,
            }
        )
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
        try:
            self._producer.produce(topic, value, key.encode() if isinstance(key, str) else key)
        except BufferError:
            self._produce_when_room(topic, str(key).encode(), value)
        self.sent += 1
        if not self.sent & 1023:  # serve delivery reports every 1024 records
            self._producer.poll(0)

    def send_event(self, event: Event) -> None:
        """Queue a domain event (see :mod:`schemas.events`)."""
        self.send(event.SCHEMA, event.to_dict())

    def _produce_when_room(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            # The local queue is full: serve delivery reports until there is room.
            self._producer.poll(0.05)
            try:
                self._producer.produce(topic, value, key)
                return
            except BufferError:
                continue

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

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued record is acknowledged; raise if any was not."""
        remaining = self._producer.flush(timeout)
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
