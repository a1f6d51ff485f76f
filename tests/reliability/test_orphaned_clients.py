"""The workaround for librdkafka #5301 (see :class:`schemas.producer.BrokerWatch`), without a
broker: a client whose statistics list no broker is replaced, and what it held is handed over.

The bug itself needs a single KRaft broker's controlled shutdown to show (a Metadata response
without brokers, in the few milliseconds before the broker closes its connections); the
broker-restart test meets it in about half its runs. These tests check the two halves of the
workaround that do not need it: telling an orphaned client, and replacing one.
"""

from __future__ import annotations

import json
import time

from batch.sink.consumer import SinkConsumer
from batch.sink.settings import SinkSettings
from schemas.catalogue import Catalogue
from schemas.dead_letters import DeadLetterWriter
from schemas.events import ClickEvent, Context, DeadLetter
from schemas.model_assembler import ModelAssembler
from schemas.model_loader import ModelTopicReader
from schemas.producer import BrokerWatch, DeliveryError, EventProducer
from schemas.settings import KafkaSettings

NOWHERE = KafkaSettings(bootstrap_servers="127.0.0.1:1")


def stats(*sources: str) -> str:
    """A librdkafka statistics report (as compact as librdkafka writes it) listing brokers
    of these sources."""
    brokers = {f"b{i}": {"nodeid": i, "source": s} for i, s in enumerate(sources)}
    return json.dumps({"brokers": brokers}, separators=(",", ":"))


def lose_every_broker(watch: BrokerWatch) -> None:
    """Make ``watch`` see a client that has listed no broker for longer than its grace."""
    watch(stats("logical"))
    watch._lost_since = time.monotonic() - watch.grace_s - 1


class Orphaned(BrokerWatch):
    def orphaned(self) -> bool:
        return True


def test_the_watch_tells_an_orphaned_client_after_its_grace_only() -> None:
    watch = BrokerWatch(grace_s=0.2)
    watch(stats("learned", "logical"))
    assert not watch.orphaned()
    watch(stats("configured"))  # re-bootstrapping while the broker is away: not orphaned
    assert not watch.orphaned()
    watch(stats("logical"))  # only the group coordinator's logical broker is left
    assert not watch.orphaned()  # not yet: within the grace
    time.sleep(0.25)
    assert watch.orphaned()
    watch(stats("learned"))
    assert not watch.orphaned()


def test_the_watch_is_installed_as_the_statistics_callback() -> None:
    watch = BrokerWatch()
    assert watch.config() == {"statistics.interval.ms": 1000, "stats_cb": watch}


def test_an_orphaned_producer_is_replaced_and_its_queued_records_handed_over() -> None:
    producer = EventProducer(NOWHERE, Catalogue("t."))
    context = Context("s1", "tv")
    for n in range(5):
        producer.send_event(ClickEvent(f"u{n % 2}", f"i{n}", "row", n, context))
    old = producer._producer
    lose_every_broker(producer._watch)
    producer.poll(0)
    assert producer.replaced == 1
    assert producer._producer is not old
    assert (producer.sent, producer.failed) == (5, 0)
    producer.poll(0)
    assert producer.replaced == 1  # the new producer has its own watch
    # What the new producer holds: the five records, with their keys (so their partitions).
    handed: list = []
    producer._deliveries.purged = handed
    producer._producer.purge(in_queue=True)
    deadline = time.monotonic() + 5
    while len(handed) < 5 and time.monotonic() < deadline:
        producer._producer.poll(0.1)
    assert sorted(m.key() for m in handed) == [b"u0", b"u0", b"u0", b"u1", b"u1"]
    assert {m.topic() for m in handed} == {"t.events.click"}
    assert producer.failed == 0


def test_an_orphaned_dead_letter_producer_is_replaced_and_its_letters_handed_over() -> None:
    writer = DeadLetterWriter(NOWHERE, Catalogue("t."))
    for n in range(3):
        writer.send(DeadLetter.for_message("t.events.view", 0, n, b"k", b"\x00", "bad", "why"))
    old = writer._producer
    # Its statistics keep listing the bootstrap server while the flush waits: the watch is
    # told the verdict instead (the watch itself is tested above).
    writer._watch = Orphaned()
    try:
        writer.flush(timeout=1.5)  # the first slice waits, then the producer is replaced
    except DeliveryError as exc:
        assert "still unacknowledged" in str(exc)  # nowhere to deliver them: still queued
    assert writer.replaced == 1
    assert writer._producer is not old
    assert len(writer._producer) == 3  # the three letters, on the new producer
    assert writer._outcomes.failed == []


def test_an_orphaned_sink_consumer_is_replaced_in_its_group() -> None:
    revoked = []
    consumer = SinkConsumer(
        NOWHERE,
        SinkSettings(group_id="orphan-test"),
        ["t.events.view"],
        before_revoke=lambda: revoked.append(True),
    )
    try:
        old = consumer._consumer
        consumer.consume(10, 0.1)
        assert consumer.replaced == 0
        lose_every_broker(consumer._watch)
        consumer.consume(10, 0.1)
        assert consumer.replaced == 1
        assert consumer._consumer is not old
        assert revoked == [True]
        assert consumer.assigned_at is None
    finally:
        consumer.close()


def test_an_orphaned_model_reader_is_replaced_and_reads_on_from_the_next_offset() -> None:
    reader = ModelTopicReader(NOWHERE, Catalogue("t."), ModelAssembler())
    reader._next = 7  # as if offsets 0-6 had been read
    first = reader._consumer
    reader.poll(0)
    assert reader.replaced == 0 and reader._consumer is first  # a healthy one is kept
    lose_every_broker(reader._watch)
    reader.poll(0)
    assert reader.replaced == 1 and reader._consumer is not first
    [assigned] = reader._consumer.assignment()  # the offset it was assigned at
    assert (assigned.topic, assigned.partition, assigned.offset) == ("t.models", 0, 7)
    reader.close()
