"""Produce dead letters: messages a consumer could not process, kept with their origin and why.

Each :class:`~schemas.events.DeadLetter` is Avro-encoded with the codec and sent to the
catalogue's ``events.dlq`` topic, keyed by the original message's key, with the original
bytes inside. A consumer commits the offsets of a failed message only after
:meth:`DeadLetterWriter.flush` returned: the letter is then acknowledged by the broker, so a
crash in between redelivers the message instead of losing it.

Example::

    from schemas.dead_letters import DeadLetterWriter

    letters = DeadLetterWriter(KafkaSettings(), Catalogue())
    try:
        codec.decode_any(msg.value(), topic.value_schemas)
    except SchemaError as exc:
        letters.send(DeadLetter.for_message(msg.topic(), msg.partition(), msg.offset(),
                                            msg.key(), msg.value(), exc.reason, str(exc)))
    letters.flush()          # raises DeliveryError if the broker did not take them all
    consumer.commit(...)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.catalogue import Catalogue
from schemas.codec import Codec, default_codec
from schemas.events import DeadLetter
from schemas.producer import (
    PRODUCER_DEFAULTS,
    BrokerWatch,
    DeliveryError,
    flush_watching,
    purge,
)
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

MAX_DETAIL_CHARS = 4096
"""Details echo offending values (up to a whole 64 KiB field); the letter keeps the original
bytes anyway, so a long explanation is cut rather than risking the broker's size limit."""


class DeadLetterWriter:
    """Sends dead letters to ``events.dlq``; :meth:`flush` confirms every one was acknowledged.

    A letter whose delivery failed is queued again, so calling :meth:`flush` until it
    returns delivers every letter at least once.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        catalogue: Catalogue,
        codec: Codec | None = None,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = catalogue.topic("events.dlq").name
        self.codec = codec or default_codec()
        self._version = self.codec.registry.current(DeadLetter.SCHEMA)
        self._config = {**kafka.client_config(), **PRODUCER_DEFAULTS, **(config or {})}
        # librdkafka #5301: a producer can lose every broker for good after a broker
        # restart; the watch tells, and flush() replaces it (see BrokerWatch).
        self._watch = BrokerWatch()
        self._producer = Producer({**self._config, **self._watch.config()})
        self.replaced = 0
        self._outcomes = _Outcomes()
        self.sent = 0

    @property
    def delivered(self) -> int:
        """Letters the broker acknowledged."""
        return self._outcomes.delivered

    def send(self, letter: DeadLetter) -> None:
        """Queue ``letter``; nothing is certain until :meth:`flush` returns."""
        if len(letter.detail) > MAX_DETAIL_CHARS:
            cut = letter.detail[:MAX_DETAIL_CHARS]
            letter = dataclasses.replace(letter, detail=f"{cut}... (detail truncated)")
        value = self.codec.encode(self._version, letter.to_dict())
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    value,
                    letter.key,
                    on_delivery=functools.partial(self._outcomes.report, letter),
                )
                break
            except BufferError:  # local queue full: serve delivery reports to make room
                self._producer.poll(0.05)
        self.sent += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged every queued letter, or raise DeliveryError.

        Letters that failed are queued again before raising, so a retry is another flush.
        """
        remaining = flush_watching(
            lambda t: self._producer.flush(t), timeout, self._replace_if_orphaned
        )
        if self._outcomes.failed:
            failed, self._outcomes.failed = self._outcomes.failed, []
            for letter, _reason in failed:
                self.send(letter)
            log.error(
                "%d dead letters were not delivered to %s (first: %s); retrying",
                len(failed),
                self.topic,
                failed[0][1],
            )
            raise DeliveryError(
                f"{len(failed)} dead letters were not delivered to {self.topic}: {failed[0][1]}"
            )
        if remaining:
            raise DeliveryError(
                f"{remaining} dead letters still unacknowledged by {self.topic} after "
                f"{timeout:g} s; is the broker reachable?"
            )

    def _replace_if_orphaned(self) -> None:
        """Replace a producer that lost every broker; its letters go to the new one.

        A letter purged in flight may have been written: it is sent again, so it can be on
        the topic twice (letters are delivered at least once, as the class promises).
        """
        if not self._watch.orphaned():
            return
        purge(self._producer)  # each letter comes back through its report, as failed
        taken, self._outcomes.failed = self._outcomes.failed, []
        self._watch = BrokerWatch()
        self._producer = Producer({**self._config, **self._watch.config()})
        self.replaced += 1
        log.warning(
            "the dead-letter producer had lost every broker (librdkafka #5301, after a "
            "broker restart): replaced it; %d letters handed to the new one",
            len(taken),
        )
        for letter, _reason in taken:
            self.send(letter)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is still queued, as far as ``timeout`` allows.

        A letter still unacknowledged after it is not lost: its message's offset was not
        committed (that waits for :meth:`flush`), so the message comes again.
        """
        remaining = self._producer.flush(timeout)
        if remaining:
            log.error(
                "closed with %d dead letters unacknowledged by %s after %g s; their messages "
                "were not committed and will be consumed again",
                remaining,
                self.topic,
                timeout,
            )


class _Outcomes:
    """The letters' delivery reports.

    Apart from the writer, so that the callbacks librdkafka holds for queued letters do not
    reference it: a writer dropped with letters still queued is freed with its client at
    once, instead of living on in a cycle (and its client reconnecting) until the process
    ends.
    """

    def __init__(self) -> None:
        self.delivered = 0
        self.failed: list[tuple[DeadLetter, str]] = []

    def report(self, letter: DeadLetter, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed.append((letter, err.str()))
