"""One consumed batch, sorted into rows per table, dead letters, and the offsets it covers.

:func:`assemble` is pure (no broker, no database): it decodes each message with its topic's
value schema, turns valid events into rows and everything else into dead letters, and
drops repeats of an ``event_id`` within the batch (the database drops repeats across
batches).

Example::

    batch = assemble(consumer.consume(5000, 1.0), Catalogue(), default_codec())
    batch.rows, len(batch.letters), batch.describe()   # 4998, 2, "events.view[0]@0-4999"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Message, TopicPartition

from batch.sink.rows import COLUMNS, Row, to_row
from schemas.catalogue import Catalogue
from schemas.codec import Codec
from schemas.errors import ConfigError, SchemaError
from schemas.events import DeadLetter
from schemas.tables import EVENT_TABLES


@dataclass
class TableRows:
    """Rows bound for one table, each with the message it came from (for a dead letter)."""

    table: str
    columns: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    sources: list[Message] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)


@dataclass
class SinkBatch:
    """What one batch of messages amounts to."""

    tables: dict[str, TableRows] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    """Messages skipped because an earlier message of the batch had the same event_id."""
    ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    """(topic, partition) -> (first, last) offset seen, dead letters and duplicates included."""
    messages: int = 0

    @property
    def rows(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())

    def commit_offsets(self) -> list[TopicPartition]:
        """Kafka's convention: the committed offset is the next one to read."""
        return [TopicPartition(t, p, last + 1) for (t, p), (_, last) in sorted(self.ranges.items())]

    def describe(self) -> str:
        """``topic[partition]@first-last`` per partition, for log lines."""
        return ", ".join(f"{t}[{p}]@{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))

    def note(self, topic: str, partition: int, offset: int) -> None:
        """Count a message as part of the batch (its offset is committed with it)."""
        self.messages += 1
        first, last = self.ranges.get((topic, partition), (offset, offset))
        self.ranges[(topic, partition)] = (min(first, offset), max(last, offset))


def dead_letter(msg: Message, reason: str, detail: str) -> DeadLetter:
    """The dead letter of ``msg``, with its original bytes and origin."""
    return DeadLetter.for_message(
        msg.topic() or "",
        msg.partition() or 0,
        _offset(msg),
        msg.key(),
        msg.value(),
        reason,
        detail,
    )


def _offset(msg: Message) -> int:
    offset = msg.offset()
    return -1 if offset is None else offset


def assemble(messages: Iterable[Message], catalogue: Catalogue, codec: Codec) -> SinkBatch:
    """Sort consumed ``messages`` (without Kafka errors) into a :class:`SinkBatch`."""
    batch = SinkBatch()
    for msg in messages:
        topic_name, partition, offset = msg.topic() or "", msg.partition() or 0, _offset(msg)
        batch.note(topic_name, partition, offset)
        try:
            topic = catalogue.by_name(topic_name)
            decoded = codec.decode_any(msg.value(), topic.value_schemas)
            row = to_row(decoded.schema, decoded.record, partition, offset)
        except SchemaError as exc:
            batch.letters.append(dead_letter(msg, exc.reason, str(exc)))
            continue
        except (ConfigError, KeyError) as exc:
            # Only the event topics are subscribed, so this means a catalogue bug; the
            # message is kept, not dropped.
            batch.letters.append(dead_letter(msg, "not-an-event-topic", f"{topic_name}: {exc}"))
            continue
        table = EVENT_TABLES[decoded.schema].name
        rows = batch.tables.get(table)
        if rows is None:
            rows = batch.tables[table] = TableRows(table, COLUMNS[decoded.schema])
        if row[0] in rows.event_ids:  # the first delivery of an event_id wins
            batch.duplicates += 1
            continue
        rows.event_ids.add(row[0])
        rows.rows.append(row)
        rows.sources.append(msg)
    return batch
