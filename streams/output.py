"""The worker's writes (state changelog, recommendation sets), produced with librdkafka.

Faust's own producer (aiokafka, behind a Python buffer) costs about 0.5 ms per message on
our machines: with two writes per burst it capped the worker near 800 events/s, whatever
the computation. librdkafka takes a message in microseconds. Durability is kept by
acknowledging differently: the events of a burst are handed back (to be acknowledged, so
that Faust may commit their offsets) only once the broker has acknowledged every write of
that burst, reported by delivery callbacks served in :meth:`Output.poll`. A failed
delivery raises, which stops the worker with the events unacknowledged: they are replayed
after the restart.

Example::

    output = Output(kafka)
    output.write(partition, [(changelog, key, state), (sets_topic, key, recs)], tokens)
    for token in output.poll():
        ack(token)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaError, Message, Producer

from schemas.producer import PRODUCER_DEFAULTS, DeliveryError
from schemas.settings import KafkaSettings

Token = TypeVar("Token")
Write = tuple[str, bytes, bytes]
"""(topic, key, value), all to the partition given with them."""

OUTPUT_DEFAULTS = {**PRODUCER_DEFAULTS, "linger.ms": 2}
"""Idempotent, acks=all, lz4; a short linger: sets are waited for (the latency target)."""


class Output(Generic[Token]):
    def __init__(self, kafka: KafkaSettings, config: dict[str, Any] | None = None) -> None:
        self._producer = Producer({**kafka.client_config(), **OUTPUT_DEFAULTS, **(config or {})})
        self._done: list[Token] = []
        self._failures: list[str] = []
        self.in_flight = 0

    def write(self, partition: int, writes: Sequence[Write], tokens: Sequence[Token]) -> None:
        """Produce ``writes``; ``tokens`` come out of :meth:`poll` once all are delivered."""
        if not writes:
            self._done.extend(tokens)
            return
        remaining = [len(writes)]

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self.in_flight -= 1
            if err is not None:
                self._failures.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            remaining[0] -= 1
            if remaining[0] == 0:
                self._done.extend(tokens)

        for topic, key, value in writes:
            while True:
                try:
                    self._producer.produce(topic, value, key, partition, on_delivery=delivered)
                    break
                except BufferError:  # local queue full: serve deliveries to make room
                    self._producer.poll(0.05)
            self.in_flight += 1

    def poll(self) -> list[Token]:
        """Serve delivery reports; the tokens whose writes are all on the broker."""
        self._producer.poll(0)
        if self._failures:
            raise DeliveryError(f"{len(self._failures)} writes failed: {self._failures[0]}")
        done, self._done = self._done, []
        return done

    def flush(self, timeout: float) -> list[Token]:
        """Wait (blocking) for every write in flight, then :meth:`poll`."""
        self._producer.flush(timeout)
        return self.poll()
