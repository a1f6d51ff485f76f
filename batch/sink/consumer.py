"""The sink's Kafka consumer: batched consumption, an explicit policy for Kafka errors,
asynchronous commits of explicit offsets, and rebalance bookkeeping.

The sink stores each batch before it consumes again, and librdkafka runs rebalance
callbacks only inside ``consume()``, so a revocation always finds nothing pending;
``before_revoke`` is where the loop checks that.

Example::

    consumer = SinkConsumer(kafka, settings, ["events.view"], before_revoke=lambda: None)
    messages = consumer.consume(5000, 1.0)     # Kafka errors already handled
    consumer.commit(batch.commit_offsets())
    consumer.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from batch.sink.settings import SinkSettings
from schemas.errors import NearlineError
from schemas.producer import BrokerWatch
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

_ERROR_LOG_INTERVAL_S = 30.0


class KafkaFailure(NearlineError):
    """The Kafka client hit an error it cannot recover from (librdkafka says: fatal)."""


def consumer_config(kafka: KafkaSettings, settings: SinkSettings) -> dict[str, Any]:
    """librdkafka configuration of a sink consumer."""
    return {
        **kafka.client_config(),
        "group.id": settings.group_id,
        # Offsets are committed by hand, after the rows are durable; see SinkConsumer.commit.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }


class SinkConsumer:
    """A confluent-kafka Consumer subscribed to ``topics`` in the sink's group.

    ``before_revoke`` is called before partitions are revoked or lost.

    A consumer that librdkafka has orphaned (no broker left, ever; see
    :class:`~schemas.producer.BrokerWatch`) is replaced by a new one in the same group, by
    :meth:`consume`: what was not committed is redelivered, as after a rebalance.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: SinkSettings,
        topics: list[str],
        *,
        before_revoke: Callable[[], object],
    ) -> None:
        self._config = consumer_config(kafka, settings)
        self._topics = topics
        self._before_revoke = before_revoke
        self._last_logged: dict[tuple[int, str], float] = {}
        self.assigned_at: float | None = None
        """monotonic time of the latest assignment (None until the group assigned us)."""
        self.replaced = 0
        """How many times an orphaned librdkafka consumer was replaced."""
        self.commit_failures = 0
        """Commits the broker refused or that failed (each batch is redelivered)."""
        self._watch, self._consumer = self._subscribe()

    def _subscribe(self) -> tuple[BrokerWatch, Consumer]:
        watch = BrokerWatch()
        consumer = Consumer({**self._config, **watch.config(), "on_commit": self._on_commit})
        consumer.subscribe(
            self._topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        return watch, consumer

    def _replace_if_orphaned(self) -> None:
        if not self._watch.orphaned():
            return
        # Called between batches (from consume()), so nothing is being stored.
        self._before_revoke()
        old = self._consumer
        self._watch, self._consumer = self._subscribe()
        self.assigned_at = None
        self.replaced += 1
        log.warning(
            "the Kafka consumer had lost every broker (librdkafka #5301, after a broker "
            "restart): replaced it; its uncommitted messages will be redelivered"
        )
        # Closing would wait for a group coordinator the old consumer can no longer reach:
        # close it on the side (its group membership expires with its session).
        threading.Thread(target=_close_quietly, args=(old,), daemon=True).start()

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned_at = time.monotonic()
        log.info("assigned %d partitions: %s", len(partitions), _names(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._before_revoke()
        log.info("revoked %d partitions: %s", len(partitions), _names(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._before_revoke()
        log.warning(
            "lost %d partitions (left the group, e.g. after a long database outage); "
            "uncommitted messages will be redelivered",
            len(partitions),
        )

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        """Up to ``num_messages`` messages; Kafka errors are logged or raised, never returned."""
        self._replace_if_orphaned()
        messages = []
        for msg in self._consumer.consume(num_messages=num_messages, timeout=timeout):
            err = msg.error()
            if err is None:
                messages.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue  # only informative (and off by default)
            elif err.fatal():
                raise KafkaFailure(f"Kafka consumer failed: {err.str()}")
            else:
                # Transient (broker down, topic not created yet...): librdkafka retries on
                # its own, and no message was lost, so log it (rate-limited) and carry on.
                self._log_error(err, msg.topic() or "")
        return messages

    def _log_error(self, err: KafkaError, topic: str) -> None:
        now = time.monotonic()
        key = (err.code(), topic)
        if now - self._last_logged.get(key, -_ERROR_LOG_INTERVAL_S) >= _ERROR_LOG_INTERVAL_S:
            self._last_logged[key] = now
            hint = (
                " (create the topics: nearline topics create)"
                if (err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART)
                else ""
            )
            log.warning("Kafka: %s%s%s", f"{topic}: " if topic else "", err.str(), hint)

    def commit(self, offsets: list[TopicPartition]) -> bool:
        """Commit ``offsets``, asynchronously; False (logged) if librdkafka refused them.

        Asynchronous, so that a commit never blocks the sink: a synchronous commit waits for
        as long as the group coordinator is unreachable, and for ever on a consumer that
        librdkafka has orphaned (see :class:`~schemas.producer.BrokerWatch`), which only
        :meth:`consume` can replace. The outcome arrives in a later :meth:`consume`; a
        failure is logged and counted in :attr:`commit_failures`.

        A failed commit loses nothing: the messages are redelivered after a rebalance or
        restart, and the tables ignore an event_id they already hold.
        """
        if not offsets:
            return True
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            self.commit_failures += 1
            log.warning(
                "offsets not committed (%s); the batch will be redelivered and deduplicated",
                exc.args[0].str() if exc.args else exc,
            )
            return False
        return True

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            self.commit_failures += 1
            log.warning(
                "offsets not committed (%s); the batch will be redelivered and deduplicated",
                err.str(),
            )
            return
        failed = [tp for tp in partitions if tp.error is not None]
        if failed:
            self.commit_failures += 1
        for tp in failed:
            log.warning(
                "offset %s[%d]@%d not committed: %s",
                tp.topic,
                tp.partition,
                tp.offset,
                tp.error.str() if tp.error else "",
            )

    def close(self) -> None:
        """Leave the group (its partitions move to the other sinks at once)."""
        self._consumer.close()


def _close_quietly(consumer: Consumer) -> None:
    try:
        consumer.close()
    except Exception as exc:  # noqa: BLE001 - it was abandoned; nothing depends on it
        log.debug("closing the abandoned consumer: %s", exc)


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none"
