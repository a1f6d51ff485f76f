"""The sink against the real broker and database: dead letters, JSON from any client,
idempotent redelivery, resuming from committed offsets, splitting partitions, retries.

Every test has its own topic prefix, consumer group and PostgreSQL schema.
"""
# ruff: noqa: S608  (table names below are our own constants)

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, ConsumerGroupState, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from batch.sink import SinkSettings, SinkStats, run_sink
from batch.sink.batches import SinkBatch, TableRows
from batch.sink.rows import COLUMNS, to_row
from batch.sink.writer import EventWriter
from schemas.catalogue import Catalogue
from schemas.codec import MAGIC, default_codec, encode
from schemas.database import make_engine
from schemas.events import BrowseEvent, ClickEvent, Context, ViewEvent
from schemas.migrations import migrate
from schemas.settings import KafkaSettings

pytestmark = pytest.mark.integration

CTX = Context(session_id="s-1", device="tv", locale="en-US")
TABLES = ("view_events", "click_events", "browse_events")


class Env:
    """One test's topics, database schema and consumer group."""

    def __init__(self, bootstrap: str, url: str, unique: Callable[[str], str]) -> None:
        self.bootstrap, self.url = bootstrap, url
        self.catalogue = Catalogue(prefix=unique("t") + ".")
        self.db_schema = unique("s").replace("-", "_")
        self.group = unique("sink")
        self.engine = make_engine(url, db_schema=self.db_schema)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        new = [NewTopic(t.name, t.partitions, 1, config=t.config()) for t in self.catalogue]
        for future in admin.create_topics(new, operation_timeout=30).values():
            future.result(timeout=30)

    def settings(self, **overrides: Any) -> SinkSettings:
        values: dict[str, Any] = {
            "group_id": self.group,
            "topic_prefix": self.catalogue.prefix,
            "db_schema": self.db_schema,
            "stop_when_idle_s": 3.0,
            "batch_size": 500,
            "progress_interval_s": 1.0,
        }
        return SinkSettings(**{**values, **overrides})

    def run(self, timeout: float = 120.0, **overrides: Any) -> SinkStats:
        """Run a sink until it is caught up (or ``timeout``, a safety net)."""
        stop = threading.Event()
        timer = threading.Timer(timeout, stop.set)
        timer.start()
        try:
            kafka = KafkaSettings(bootstrap_servers=self.bootstrap)
            return run_sink(kafka, self.url, self.settings(**overrides), stop=stop)
        finally:
            timer.cancel()

    def produce(self, messages: list[tuple[str, bytes | None, bytes]]) -> None:
        """(base topic, key, value) triples, in order, acknowledged."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        errors: list[Any] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        for base, key, value in messages:
            producer.produce(
                self.catalogue.topic(base).name,
                value,
                key,
                on_delivery=on_delivery,
            )
            producer.poll(0)
        assert producer.flush(30) == 0 and errors == []

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())

    def total(self) -> int:
        return sum(self.count(t) for t in TABLES)

    def dead_letters(self, want: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group + "-dlq",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([self.catalogue.topic("events.dlq").name])
        letters: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for msg in consumer.consume(1000, 1.0):
                    assert msg.error() is None, msg.error()
                    letters.append(default_codec().decode("DeadLetter", msg.value()))
                if len(letters) >= want:  # keep reading a moment: extra letters are a bug
                    deadline = min(deadline, time.monotonic() + 2.0)
        finally:
            consumer.close()
        return letters

    def close(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(f'drop schema if exists "{self.db_schema}" cascade'))
        self.engine.dispose()
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.delete_topics([t.name for t in self.catalogue]).values():
            future.result(timeout=30)


@pytest.fixture
def env(kafka_bootstrap: str, database_url: str, unique: Callable[[str], str]) -> Iterator[Env]:
    environment = Env(kafka_bootstrap, database_url, unique)
    yield environment
    environment.close()


def _event(i: int, event_id: str | None = None) -> tuple[str, bytes | None, bytes]:
    """A valid event (view, click or browse by ``i``) as (base topic, key, value)."""
    user = f"user-{i % 37}"
    eid = event_id or str(uuid.uuid4())
    event: ViewEvent | ClickEvent | BrowseEvent
    if i % 3 == 0:
        event = ViewEvent(user, f"i{i}", 1000 + i, 0.5, CTX, rating=4.0, event_id=eid)
        base = "events.view"
    elif i % 3 == 1:
        event = ClickEvent(user, f"i{i}", "home", i % 10, CTX, event_id=eid)
        base = "events.click"
    else:
        event = BrowseEvent(user, "row-1", (f"i{i}", "i2"), CTX, event_id=eid)
        base = "events.browse"
    return base, user.encode(), encode(event.SCHEMA, event.to_dict())


def _malformed(i: int, rng: random.Random) -> bytes:
    good = _event(0)[2]  # a ViewEvent, sent below to events.view
    view = ViewEvent("u", "i", 1, 0.5, CTX).to_dict()
    kind = i % 8
    if kind == 0:
        return b"\x00" + rng.randbytes(rng.randint(1, 200))  # random bytes
    if kind == 1:
        return MAGIC + rng.randbytes(8) + good[10:]  # a fingerprint nobody knows
    if kind == 2:
        return good[: rng.randint(10, len(good) - 1)]  # truncated Avro
    if kind == 3:
        return json.dumps({k: v for k, v in view.items() if k != "item_id"}).encode()
    if kind == 4:
        return json.dumps({**view, "duration_ms": "long"}).encode()  # wrong type
    if kind == 5:
        return b'{"event_id": "' + str(uuid.uuid4()).encode()  # invalid JSON
    if kind == 6:
        return json.dumps({**view, "item_id": "x" * 70_000}).encode()  # oversized
    return b""  # empty


def test_malformed_messages_become_dead_letters_and_good_ones_rows(env: Env) -> None:
    rng = random.Random(7)
    good = [_event(i) for i in range(1000)]
    bad = [("events.view", f"bad-{i}".encode(), _malformed(i, rng)) for i in range(1000)]
    mixed = good + bad
    rng.shuffle(mixed)
    env.produce(mixed)

    stats = env.run()

    produced = Counter(base for base, _, _ in good)
    assert env.count("view_events") == produced["events.view"]
    assert env.count("click_events") == produced["events.click"]
    assert env.count("browse_events") == produced["events.browse"]
    assert (stats.rows_inserted, stats.dead_letters, stats.messages) == (1000, 1000, 2000)

    letters = env.dead_letters(want=1000)
    assert len(letters) == 1000
    assert all(x["reason"] and x["detail"] for x in letters)
    assert all(x["original_topic"] == env.catalogue.topic("events.view").name for x in letters)
    # Each letter carries its original key, value, and the reason the codec gives it.
    expected: Counter[tuple[bytes | None, bytes, str | None]] = Counter()
    for _, key, value in bad:
        with pytest.raises(Exception) as info:
            default_codec().decode("ViewEvent", value)
        expected[(key, value, getattr(info.value, "reason", None))] += 1
    assert Counter((x["key"], x["value"], x["reason"]) for x in letters) == expected
    assert {reason for _, _, reason in expected} == {
        "not-avro-or-json",
        "unknown-fingerprint",
        "truncated",
        "missing-field",
        "wrong-type",
        "invalid-json",
        "oversized",
        "empty",
    }


def test_json_from_a_plain_client_is_stored(env: Env) -> None:
    event_id = str(uuid.uuid4())
    # Written by hand, as a console producer would send it: no code of ours involved.
    text = (
        '{"event_id": "'
        + event_id
        + '", "user_id": "json-user", "ts": "2024-05-01T12:00:00.123Z", '
        '"context": {"session_id": "s9", "device": "web"}, '
        '"item_id": "i42", "surface": "search", "position": 2}'
    )
    producer = Producer({"bootstrap.servers": env.bootstrap})
    producer.produce(env.catalogue.topic("events.click").name, text.encode(), b"json-user")
    assert producer.flush(30) == 0

    assert env.run().rows_inserted == 1
    with env.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select user_id, extract(epoch from ts) * 1000, session_id, device, locale, "
                "item_id, surface, position from click_events where event_id = :id"
            ),
            {"id": event_id},
        ).one()
    assert tuple(row) == ("json-user", 1714564800123, "s9", "web", None, "i42", "search", 2)


def test_redelivery_is_idempotent_and_a_restart_resumes(env: Env) -> None:
    first = [_event(i) for i in range(300)]
    env.produce(first)
    assert env.run().rows_inserted == 300

    extra = [_event(i) for i in range(300, 350)]
    env.produce(first + extra)  # the same 300 events again (same event_ids), then 50 new
    again = env.run()
    # Resumed from the committed offsets: the first 300 messages were not read again.
    assert (again.messages, again.rows_inserted, again.duplicates) == (350, 50, 300)

    everything = env.run(group_id=env.group + "-fresh")  # a new group reads all 650
    assert (everything.messages, everything.rows_inserted, everything.duplicates) == (650, 0, 650)
    assert env.total() == 350


def _group_members(bootstrap: str, group: str) -> list[set[tuple[str, int]]]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    if description.state != ConsumerGroupState.STABLE:
        return []
    return [
        {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
        for m in description.members
    ]


def test_two_sinks_in_one_group_split_the_partitions(env: Env) -> None:
    stop = threading.Event()
    results: list[SinkStats] = []
    kafka = KafkaSettings(bootstrap_servers=env.bootstrap)
    settings = env.settings(stop_when_idle_s=None)
    threads = [
        threading.Thread(
            target=lambda: results.append(run_sink(kafka, env.url, settings, stop=stop))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(members := _group_members(env.bootstrap, env.group)) != 2 or not all(members):
            assert time.monotonic() < deadline, f"group never had two busy members: {members}"
            time.sleep(0.5)
        first, second = members
        assert not first & second and len(first | second) == 18  # 3 event topics x 6

        env.produce([_event(i) for i in range(3000)])
        deadline = time.monotonic() + 120
        while env.total() < 3000 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert len(results) == 2
    assert all(r.rows_inserted > 0 for r in results), [r.rows_inserted for r in results]
    assert sum(r.rows_inserted for r in results) == 3000
    assert sum(r.duplicates for r in results) == 0
    assert env.total() == 3000


def test_a_database_failure_is_retried_until_it_passes(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    results: list[SinkStats] = []
    kafka = KafkaSettings(bootstrap_servers=env.bootstrap)
    settings = env.settings(stop_when_idle_s=None, min_backoff_s=0.2, max_backoff_s=1.0)
    thread = threading.Thread(
        target=lambda: results.append(run_sink(kafka, env.url, settings, stop=stop))
    )
    caplog.set_level(logging.WARNING, logger="batch.sink")
    migrate(env.engine)  # the tables exist before the test polls them
    thread.start()
    try:
        views = [_event(3 * i) for i in range(50)]
        env.produce(views[:10])
        _wait_for(lambda: env.count("view_events") == 10)
        with env.engine.begin() as conn:  # the table vanishes: every write now fails
            conn.execute(sa.text("alter table view_events rename to view_events_away"))
        env.produce(views[10:])
        _wait_for(lambda: "storing" in caplog.text and "failed (attempt 2" in caplog.text)
        with env.engine.begin() as conn:
            conn.execute(sa.text("alter table view_events_away rename to view_events"))
        _wait_for(lambda: env.count("view_events") == 50)
    finally:
        stop.set()
        thread.join(60)
    assert results and results[0].rows_inserted == 50
    # The failure is logged with where the batch came from: topic[partition]@offsets.
    assert env.catalogue.topic("events.view").name + "[" in caplog.text


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_the_writer_dead_letters_rows_postgres_refuses(env: Env) -> None:
    migrate(env.engine)
    records = [ClickEvent("u", "i", "s", 1, CTX).to_dict() for _ in range(3)]
    rows = [to_row("ClickEvent", r, 0, n) for n, r in enumerate(records)]
    # Bypass the checks in rows.py to reach the database with text it cannot store.
    rows[1] = (*rows[1][:1], "nul\x00user", *rows[1][2:])
    sources: list[Any] = [object(), object(), object()]
    batch = SinkBatch(
        tables={"click_events": TableRows("click_events", COLUMNS["ClickEvent"], rows, sources)}
    )

    result = EventWriter(env.engine).write(batch)

    assert (result.inserted, result.duplicates) == (2, 0)
    assert [source for source, _ in result.rejected] == [sources[1]]
    assert env.count("click_events") == 2
    assert EventWriter(env.engine).write(batch).duplicates == 2  # and again: no new rows


def _table_rows(schema: str, records: list[dict[str, Any]], first_offset: int = 0) -> TableRows:
    rows = [to_row(schema, r, 0, first_offset + n) for n, r in enumerate(records)]
    table = {"ViewEvent": "view_events", "ClickEvent": "click_events"}[schema]
    return TableRows(table, COLUMNS[schema], rows, [object() for _ in rows])


def test_a_batch_with_stored_event_ids_is_merged_and_counts_them(env: Env) -> None:
    migrate(env.engine)
    writer = EventWriter(env.engine)
    views = [ViewEvent(f"u{n}", "i", n, 0.5, CTX, rating=None).to_dict() for n in range(5)]
    clicks = [ClickEvent(f"u{n}", "i", "s", n, CTX).to_dict() for n in range(3)]

    first = writer.write(SinkBatch(tables={"view_events": _table_rows("ViewEvent", views[:2])}))
    assert (first.inserted, first.duplicates, first.merged_tables) == (2, 0, 0)  # plain COPY

    # Two stored views among new ones, beside a table without any: only the views' COPY
    # hits the primary key and is merged; the clicks' COPY stays.
    mixed = SinkBatch(
        tables={
            "click_events": _table_rows("ClickEvent", clicks),
            "view_events": _table_rows("ViewEvent", views, first_offset=100),
        }
    )
    result = writer.write(mixed)
    assert (result.inserted, result.duplicates, result.merged_tables) == (6, 2, 1)
    assert (env.count("view_events"), env.count("click_events")) == (5, 3)
    with env.engine.connect() as conn:
        offsets = conn.execute(sa.text("select kafka_offset from view_events order by 1"))
        assert [o for (o,) in offsets] == [0, 1, 102, 103, 104]  # the first copies were kept

    again = writer.write(mixed)
    assert (again.inserted, again.duplicates, again.merged_tables) == (0, 8, 2)
    assert env.total() == 8
