"""One consumed batch, sorted into rows per table, dead letters, and the offsets it covers.

:func:`assemble` is pure (no broker, no database): it decodes each message with its topic's
value schema, turns valid events into rows and everything else into dead letters, and
drops repeats of an ``event_id`` within the batch (the database drops repeats across
batches).

:func:`assemble_lazily` does the same on demand: offsets and the tables the batch may
write are known at once, and messages are decoded as :meth:`SinkBatch.assemble_more` asks
for them. The writer uses it to decode the rest of a batch while PostgreSQL stores the
rows it has already sent.

Example::

    batch = assemble(consumer.consume(5000, 1.0), Catalogue(), default_codec())
    batch.rows, len(batch.letters), batch.describe()   # 4998, 2, "events.view[0]@0-4999"
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
    """What one batch of messages amounts to.

    A batch from :func:`assemble_lazily` fills ``tables``, ``letters`` and ``duplicates`` as
    it is assembled; ``ranges`` and ``messages`` are complete from the start.
    """

    tables: dict[str, TableRows] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    """Messages skipped because an earlier message of the batch had the same event_id."""
    ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    """(topic, partition) -> (first, last) offset seen, dead letters and duplicates included."""
    messages: int = 0
    pending: _Pending | None = field(default=None, repr=False)
    """Messages not assembled yet (None once the batch is complete)."""

    @property
    def rows(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())

    def commit_offsets(self) -> list[TopicPartition]:
        """Kafka's convention: the committed offset is the next one to read."""
        return [TopicPartition(t, p, last + 1) for (t, p), (_, last) in sorted(self.ranges.items())]

    def describe(self) -> str:
        """``topic[partition]@first-last`` per partition, for log lines."""
        return ", ".join(f"{t}[{p}]@{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))

    def table_names(self) -> list[str]:
        """Sorted names of the tables the batch has rows for, and, while it is not complete,
        of those its pending messages may add rows to."""
        names = set(self.tables)
        if self.pending is not None:
            names |= self.pending.tables
        return sorted(names)

    def assemble_more(self, count: int) -> bool:
        """Assemble up to ``count`` pending messages; False once none is left."""
        if self.pending is None:
            return False
        if not self.pending.assemble(self, count):
            self.pending = None
        return self.pending is not None

    def assemble_rest(self) -> SinkBatch:
        """Assemble every pending message; returns the (now complete) batch."""
        while self.assemble_more(1 << 20):
            pass
        return self


@dataclass
class _Pending:
    """The messages of a batch still to assemble, and what assembling them needs."""

    messages: Iterator[Message]
    catalogue: Catalogue
    codec: Codec
    tables: frozenset[str]
    """Tables the messages' topics are mirrored in."""
    schemas: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Value schemas by topic name, looked up once per batch."""

    def assemble(self, batch: SinkBatch, count: int) -> bool:
        """Add up to ``count`` messages to ``batch``; False once none is left."""
        for _ in range(count):
            msg = next(self.messages, None)
            if msg is None:
                return False
            self._add(batch, msg)
        return True

    def _add(self, batch: SinkBatch, msg: Message) -> None:
        topic_name = msg.topic() or ""
        try:
            schemas = self.schemas.get(topic_name)
            if schemas is None:
                schemas = self.catalogue.by_name(topic_name).value_schemas
                self.schemas[topic_name] = schemas
            decoded = self.codec.decode_any(msg.value(), schemas)
            row = to_row(decoded.schema, decoded.record, msg.partition() or 0, _offset(msg))
        except SchemaError as exc:
            batch.letters.append(dead_letter(msg, exc.reason, str(exc)))
            return
        except (ConfigError, KeyError) as exc:
            # Only the event topics are subscribed, so this means a catalogue bug; the
            # message is kept, not dropped.
            batch.letters.append(dead_letter(msg, "not-an-event-topic", f"{topic_name}: {exc}"))
            return
        table = EVENT_TABLES[decoded.schema].name
        rows = batch.tables.get(table)
        if rows is None:
            rows = batch.tables[table] = TableRows(table, COLUMNS[decoded.schema])
        if row[0] in rows.event_ids:  # the first delivery of an event_id wins
            batch.duplicates += 1
            return
        rows.event_ids.add(row[0])
        rows.rows.append(row)
        rows.sources.append(msg)


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
    return assemble_lazily(list(messages), catalogue, codec).assemble_rest()


def assemble_lazily(messages: Sequence[Message], catalogue: Catalogue, codec: Codec) -> SinkBatch:
    """A :class:`SinkBatch` of ``messages`` whose offsets are noted now and whose messages
    are decoded as :meth:`SinkBatch.assemble_more` asks for them."""
    batch = SinkBatch(messages=len(messages))
    ranges = batch.ranges
    topics: set[str] = set()
    for msg in messages:  # every offset of the batch is committed with it
        topic_name = msg.topic() or ""
        topics.add(topic_name)
        key, offset = (topic_name, msg.partition() or 0), _offset(msg)
        span = ranges.get(key)
        if span is None:
            ranges[key] = (offset, offset)
        elif offset > span[1]:
            ranges[key] = (span[0], offset)
        elif offset < span[0]:
            ranges[key] = (offset, span[1])
    tables: set[str] = set()
    for topic_name in topics:
        try:
            schemas = catalogue.by_name(topic_name).value_schemas
        except ConfigError:
            continue  # its messages become dead letters
        tables |= {EVENT_TABLES[s].name for s in schemas if s in EVENT_TABLES}
    batch.pending = _Pending(iter(messages), catalogue, codec, frozenset(tables))
    return batch
