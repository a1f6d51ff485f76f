"""The worker's writes (state changelog, recommendation sets), produced with librdkafka.

Faust's own producer (aiokafka, behind a Python buffer) costs about 0.5 ms per message on
our machines: with two writes per burst it capped the worker near 800 events/s, whatever
the computation. librdkafka takes a message in microseconds. Durability is kept by
acknowledging differently: the events of a burst are handed back (to be acknowledged, so
that Faust may commit their offsets) only once the broker has acknowledged every write of
that burst, reported by delivery callbacks served in :meth:`Output.poll`. A failed
delivery raises, which stops the worker with the events unacknowledged: they are replayed
after the restart.

Writes are queued with one ``produce_batch`` call per topic and partition per flush, not
one ``produce`` per message: on two busy cores, each ``produce`` waits for librdkafka's
broker thread to let go of the partition queue, and that wait was the worker's largest
single cost.

Example::

    output = Output(kafka)
    output.write_many([(partition, [(changelog, key, state), (sets_topic, key, recs)], tokens)])
    for token in output.poll():
        ack(token)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaError, Message, Producer

from schemas.producer import (
    PRODUCER_DEFAULTS,
    BrokerWatch,
    DeliveryError,
    flush_watching,
    purge,
    reproduce,
)
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

Token = TypeVar("Token")
Write = tuple[str, bytes, bytes]
"""(topic, key, value), all to the partition given with them."""

OUTPUT_DEFAULTS = {**PRODUCER_DEFAULTS, "linger.ms": 2}
"""Idempotent, acks=all, lz4; a short linger: sets are waited for (the latency target)."""


class Output(Generic[Token]):
    def __init__(self, kafka: KafkaSettings, config: dict[str, Any] | None = None) -> None:
        self._config = {**kafka.client_config(), **OUTPUT_DEFAULTS, **(config or {})}
        # librdkafka #5301: a producer can lose every broker for good after a broker
        # restart; the watch tells, and poll() replaces it (see BrokerWatch).
        self._watch = BrokerWatch()
        self._producer = Producer({**self._config, **self._watch.config()})
        self._done: list[Token] = []
        self._failures: list[str] = []
        self._purged: list[tuple[Message, Callable[..., None]]] | None = None
        self.in_flight = 0
        self.replaced = 0

    def write_many(self, bursts: Sequence[tuple[int, Sequence[Write], Sequence[Token]]]) -> None:
        """Produce each burst's writes (to its partition); a burst's tokens come out of
        :meth:`poll` once all its writes are delivered. Each topic's messages keep their
        order."""
        # One batch per topic and partition: confluent-kafka 2.16 ignores the per-message
        # "partition" of produce_batch (and would route by key), so it is given per batch.
        batches: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for partition, writes, tokens in bursts:
            if not writes:
                self._done.extend(tokens)
                continue
            delivered = self._on_delivery(len(writes), tokens)
            for topic, key, value in writes:
                message = {"key": key, "value": value, "callback": delivered}
                batches.setdefault((topic, partition), []).append(message)
        for (topic, partition), messages in batches.items():
            self._produce(topic, partition, messages)

    def _on_delivery(self, writes: int, tokens: Sequence[Token]) -> Callable[..., None]:
        remaining = [writes]

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self.in_flight -= 1
            if err is not None and self._purged is not None:
                if err.code() == KafkaError._PURGE_QUEUE:
                    self._purged.append((msg, delivered))  # never sent: sent again
                    return
            if err is not None:
                self._failures.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            remaining[0] -= 1
            if remaining[0] == 0:
                self._done.extend(tokens)

        return delivered

    def _produce(self, topic: str, partition: int, messages: list[dict[str, Any]]) -> None:
        """Queue ``messages`` in order: when librdkafka's queue is full, the rest of the
        batch is refused together (nothing is freed until deliveries are served), so the
        refused tail is queued again once :meth:`poll` has made room."""
        while messages:
            queued = self._producer.produce_batch(topic, messages, partition=partition)
            self.in_flight += queued
            if queued == len(messages):
                return
            refused = [i for i, m in enumerate(messages) if "_error" in m]
            errors = {m["_error"].code() for m in messages if "_error" in m}
            if errors != {KafkaError._QUEUE_FULL} or refused != list(range(queued, len(messages))):
                raise DeliveryError(
                    f"{topic}: could not queue a batch: {messages[refused[0]]['_error']}"
                )
            messages = [{k: v for k, v in m.items() if k != "_error"} for m in messages[queued:]]
            self._producer.poll(0.05)  # serve deliveries to make room

    def poll(self) -> list[Token]:
        """Serve delivery reports; the tokens whose writes are all on the broker."""
        self._producer.poll(0)
        self._replace_if_orphaned()
        if self._failures:
            raise DeliveryError(f"{len(self._failures)} writes failed: {self._failures[0]}")
        done, self._done = self._done, []
        return done

    def flush(self, timeout: float) -> list[Token]:
        """Wait (blocking) for every write in flight, then :meth:`poll`."""
        flush_watching(lambda t: self._producer.flush(t), timeout, self._replace_if_orphaned)
        return self.poll()

    def _replace_if_orphaned(self) -> None:
        """Replace a producer that lost every broker, sending again what it still held.

        Nothing is written twice: an orphaned producer has no connection and so no request
        in flight; what it holds was refused ("not leader") or never sent, and comes back
        purged "from the queue". A write purged in flight fails (and stops the worker, its
        events unacknowledged), as any failed delivery does.
        """
        if not self._watch.orphaned():
            return
        purged: list[tuple[Message, Callable[..., None]]] = []
        self._purged = purged
        try:
            purge(self._producer)
        finally:
            self._purged = None
        self._watch = BrokerWatch()
        self._producer = Producer({**self._config, **self._watch.config()})
        self.replaced += 1
        log.warning(
            "the Kafka producer had lost every broker (librdkafka #5301, after a broker "
            "restart): replaced it; %d queued writes handed to the new one",
            len(purged),
        )
        for msg, callback in purged:
            reproduce(self._producer, msg, callback)
            self.in_flight += 1
