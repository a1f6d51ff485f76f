"""Sink throughput (Kafka -> PostgreSQL), beside a plain COPY of the same rows in the same run.

Produces N ViewEvents to a fresh prefixed topic set, then times ``run_sink`` from its start
(connectivity checks, migrations, joining the group) until it has caught up. The reference
COPYs the very rows the sink stored (exported first, untimed, held in memory) into an empty
table of the same shape (primary key and indexes included): the ceiling the sink's decode,
dedupe, staging and ``ON CONFLICT`` approach. Figures, not assertions: run it on a quiet machine.

    eval "$(nearline dev env)"
    python benchmarks/sink_throughput.py --events 200000
"""

from __future__ import annotations

import argparse
import io
import logging
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka.admin import AdminClient

from batch.sink import SinkSettings, SinkStats, run_sink
from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.database import make_engine
from schemas.events import Context, ViewEvent
from schemas.producer import EventProducer
from schemas.settings import DatabaseSettings, KafkaSettings, load
from schemas.tables import view_events

DEVICES = ("tv", "phone", "web", "tablet")
COLUMNS = ", ".join(c.name for c in view_events.columns if c.name != "ingested_at")


def events(n: int) -> Iterator[dict[str, Any]]:
    """n ViewEvent records, generated as they are sent so the sink's process stays small:
    a benchmark holding 200k dicts would make every garbage collection in the sink slower."""
    rng = random.Random(42)  # noqa: S311 (test data, not secrets)
    start = 1_700_000_000_000
    return (
        ViewEvent(
            user_id=f"u{rng.randrange(6000)}",
            item_id=f"i{rng.randrange(4000)}",
            duration_ms=rng.randrange(7_200_000),
            progress=rng.random(),
            context=Context(f"s{rng.randrange(50_000)}", rng.choice(DEVICES), "en-US", "NL"),
            rating=rng.choice((None, 1.0, 2.5, 4.0, 5.0)),
            ts=start + i * 10,
        ).to_dict()
        for i in range(n)
    )


def produce(kafka: KafkaSettings, catalogue: Catalogue, records: Iterable[dict[str, Any]]) -> float:
    start = time.perf_counter()
    with EventProducer(kafka, catalogue) as producer:
        for record in records:
            producer.send("ViewEvent", record, validate=False)
    return time.perf_counter() - start


def sink(kafka: KafkaSettings, url: str, settings: SinkSettings) -> tuple[SinkStats, float]:
    """Run the sink until caught up; also return the rate after its first batch."""
    first: list[tuple[float, int]] = []

    def progress(stats: SinkStats) -> None:
        if not first:
            first.append((time.monotonic(), stats.rows_inserted))

    stats = run_sink(kafka, url, settings, progress=progress)
    steady = 0.0
    if first and stats.last_commit_at and stats.last_commit_at > first[0][0]:
        steady = (stats.rows_inserted - first[0][1]) / (stats.last_commit_at - first[0][0])
    return stats, steady


def plain_copy(url: str, db_schema: str) -> tuple[int, float]:
    """Rows and seconds to COPY the rows the sink stored into an empty table of the same
    shape, and commit. The rows are exported first, outside the timing."""
    engine = make_engine(url, db_schema=db_schema, pool_size=1)
    conn: Any = engine.raw_connection()
    payload = io.BytesIO()
    try:
        with conn.cursor() as cur:
            export = f"copy (select {COLUMNS} from view_events) to stdout"  # noqa: S608
            cur.copy_expert(export, payload)
            cur.execute("create table copy_reference (like view_events including all)")
            conn.commit()
            payload.seek(0)
            start = time.perf_counter()
            cur.copy_expert(f"copy copy_reference ({COLUMNS}) from stdin", payload)
            conn.commit()
            elapsed = time.perf_counter() - start
            cur.execute("select count(*) from copy_reference")
            return int(cur.fetchone()[0]), elapsed
    finally:
        conn.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=SinkSettings().batch_size)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    kafka = load(KafkaSettings)
    url = load(DatabaseSettings).url()
    token = uuid.uuid4().hex[:8]
    catalogue = Catalogue(prefix=f"bench-{token}.")
    db_schema = f"bench_{token}"
    ensure_topics(kafka, catalogue)
    engine = make_engine(url, db_schema=db_schema)
    try:
        produced_s = produce(kafka, catalogue, events(args.events))
        print(f"produced {args.events} ViewEvents in {produced_s:.1f} s")

        settings = SinkSettings(
            topic_prefix=catalogue.prefix,
            db_schema=db_schema,
            group_id=f"bench-sink-{token}",
            batch_size=args.batch_size,
            stop_when_idle_s=3.0,
        )
        stats, steady = sink(kafka, url, settings)
        if stats.rows_inserted != args.events:
            raise SystemExit(f"the sink stored {stats.rows_inserted} of {args.events} events")

        copied, copy_s = plain_copy(url, db_schema)
        print(f"batch size {args.batch_size}, {stats.batches} batches")
        print(
            f"sink       {stats.rows_per_s:>9,.0f} rows/s  (start to caught up, "
            f"{stats.busy_s:.1f} s; {steady:,.0f} rows/s after the first batch)"
        )
        print(
            f"plain COPY {copied / copy_s:>9,.0f} rows/s  ({copy_s:.1f} s, the same rows, "
            "empty table with the same indexes)"
        )
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'drop schema if exists "{db_schema}" cascade')
        engine.dispose()
        admin = AdminClient(dict[str, Any](kafka.client_config()))
        for future in admin.delete_topics([t.name for t in catalogue]).values():
            future.result(timeout=30)


if __name__ == "__main__":
    main()
