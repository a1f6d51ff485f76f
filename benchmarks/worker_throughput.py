"""Stream worker throughput and state memory on MovieLens-100K, beside same-run references.

1. Trains a quick LightFM model on ML-100K with ``batch/`` and publishes it.
2. **Pipeline alone** (reference, no Kafka): the worker's per-event code (decode, state
   update, trending, fold-in, ranking, encode) over the 100k ratings, a set per event.
3. **References on the same backlog**: a plain confluent-kafka consumer reading it, and a
   Faust app that only decodes and acknowledges each event (Faust's own ceiling here).
4. **Worker**: ``python -m streams`` (one process) on a backlog of the 100k events, once with
   a set per event (``NEARLINE_WORKER_COALESCE_MAX_EVENTS=1``) and once with the default
   burst coalescing; events/s from the first to the last set's ``computed_at``.
5. **Memory per 100k users** of per-user state: the table's compact bytes, beside the same
   states held as Python objects.

Figures, not assertions: run it on a quiet machine.

    eval "$(nearline dev env)"
    python benchmarks/worker_throughput.py --epochs 5
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from batch.config import TrainConfig
from batch.features import FeatureSpace
from batch.interactions import to_interactions
from batch.packaging import to_artifact
from batch.training import train
from schemas import movielens
from schemas.admin import ensure_topics
from schemas.artifact import ModelArtifact
from schemas.catalogue import Catalogue
from schemas.codec import default_codec, encode
from schemas.events import RecommendationSet
from schemas.model_publisher import publish_model
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings, load
from streams.intake import Intake
from streams.model import ModelHolder
from streams.processor import EventProcessor
from streams.settings import StreamsSettings
from streams.signals import Weights
from streams.state import Limits, UserState
from streams.trending import DecayedCounts
from streams.trending_board import TrendingBoard

ROOT = Path(__file__).resolve().parent.parent


def fresh_catalogue(kafka: KafkaSettings, name: str = "bench") -> Catalogue:
    """Topics of a new prefix, each partition answering (a new partition may report
    NOT_LEADER for a moment, which the model publisher does not retry)."""
    catalogue = Catalogue(f"{name}-{uuid.uuid4().hex[:8]}.")
    ensure_topics(kafka, catalogue)
    probe = Consumer({**kafka.client_config(), "group.id": "leader-probe"})
    for topic in catalogue:
        for p in range(topic.partitions):
            for _ in range(100):
                try:
                    probe.get_watermark_offsets(TopicPartition(topic.name, p), timeout=5)
                    break
                except KafkaException:
                    time.sleep(0.2)
    probe.close()
    return catalogue


def ml_model(epochs: int, version: int = 1) -> tuple[ModelArtifact, list[dict[str, Any]]]:
    """A model trained on every ML-100K rating, and the ratings as ViewEvent records."""
    ml = movielens.load()
    ratings = movielens.in_time_order(ml.ratings)
    events = pd.DataFrame(
        {
            "user_id": ratings.user_id,
            "item_id": ratings.item_id,
            "event_type": "view",
            "ts": ratings.ts * 1000,
            "duration_ms": np.zeros(len(ratings), dtype=np.int64),
            "rating": ratings.rating,
        }
    )
    config = TrainConfig(epochs=epochs)
    space = FeatureSpace.build(events, ml.items, ml.users, config)
    model = train(to_interactions(events, space, config), space, config, progress=False)
    artifact = to_artifact(model, version=version, config={}, cutoff={}, metrics={})
    return artifact, list(movielens.view_events(ratings))


class MemoryTable(dict[bytes, bytes]):
    """A table without Kafka."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def remember(self, key: bytes, value: bytes) -> None:
        self[key] = value


class CountingOutput:
    """Writes nowhere; counts what would be produced."""

    def __init__(self) -> None:
        self.writes = 0

    def write_many(self, bursts: Any) -> None:
        self.writes += sum(len(writes) for _, writes, _ in bursts)


def pipeline_alone(model: ModelArtifact, records: list[dict[str, Any]]) -> float:
    """Events/s of the worker's per-event code with a set per event, no Kafka."""
    catalogue = Catalogue()
    topic = catalogue.topic("events.view").name
    holder = ModelHolder()
    holder.swap(model)
    settings = StreamsSettings(coalesce_max_events=1)
    shares: dict[str, DecayedCounts] = {}
    board = TrendingBoard(shares, lambda: DecayedCounts(3_600_000), lambda: {0})
    output = CountingOutput()
    processor: EventProcessor[int] = EventProcessor(
        Intake(catalogue, default_codec(), Weights()),
        MemoryTable("changelog"),
        MemoryTable("recommendations"),
        board,
        holder,
        output,
        settings,
        default_codec(),
    )
    payloads = [(r["user_id"].encode(), encode("ViewEvent", r)) for r in records]
    start = tick = time.perf_counter()
    for offset, (key, value) in enumerate(payloads):
        processor.handle(offset, topic, 0, offset, key, value)
        if time.perf_counter() - tick > 0.00125:  # the worker's ticker at 5 ms idle windows
            processor.flush_due()
            tick = time.perf_counter()
    processor.flush()
    elapsed = time.perf_counter() - start
    assert output.writes == 2 * len(payloads)  # a state and a set per event
    return len(payloads) / elapsed


def raw_consume(kafka: KafkaSettings, topic: str, n: int) -> float:
    consumer = Consumer({**kafka.client_config(), "group.id": f"raw-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(6)])
    got, start = 0, None
    while got < n:
        for msg in consumer.consume(1000, 1.0):
            if msg.error() is None:
                start = start or time.perf_counter()
                got += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return n / elapsed


def worker_run(
    kafka: KafkaSettings,
    model: ModelArtifact,
    records: list[dict[str, Any]],
    env: dict[str, str],
    label: str,
    timeout: float,
) -> tuple[float, int]:
    """Events/s of one worker process on a backlog of ``records``; and sets published."""
    catalogue = fresh_catalogue(kafka)
    prefix = catalogue.prefix
    publish_model(kafka, catalogue, model)
    with EventProducer(kafka, catalogue) as producer:
        for record in records:
            producer.send("ViewEvent", record)
    data = tempfile.mkdtemp(prefix="nearline-bench-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams"],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "NEARLINE_TOPIC_PREFIX": prefix,
            "NEARLINE_WORKER_DATADIR": data,
            "NEARLINE_WORKER_LOGLEVEL": "warn",
        },
        stdout=subprocess.DEVNULL,
        stderr=open(Path(data) / "worker.log", "wb"),
    )
    last = {r["user_id"]: r["event_id"] for r in records}
    consumer = Consumer({**kafka.client_config(), "group.id": f"sets-{uuid.uuid4().hex}"})
    name = catalogue.topic("recommendations").name
    consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in range(6)])
    first = final = None
    sets, done = 0, set()
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(last) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    continue
                recs = default_codec().decode(RecommendationSet.SCHEMA, msg.value())
                sets += 1
                first = recs["computed_at"] if first is None else min(first, recs["computed_at"])
                final = recs["computed_at"] if final is None else max(final, recs["computed_at"])
                if recs["trigger_event_id"] == last[recs["user_id"]]:
                    done.add(recs["user_id"])
    finally:
        proc.terminate()
        proc.wait(60)
        consumer.close()
    if len(done) < len(last):
        print(f"  {label}: only {len(done)} of {len(last)} users finished in {timeout:g} s")
    assert first is not None and final is not None
    return len(records) / max((final - first) / 1000, 1e-3), sets


def faust_floor_app(prefix: str, data: str) -> None:
    """A Faust worker that only decodes and acknowledges events (run in a subprocess)."""
    import faust

    kafka = load(KafkaSettings)
    catalogue = Catalogue(prefix)
    app = faust.App(
        f"{prefix}floor",
        broker=f"kafka://{kafka.bootstrap_servers}",
        store="memory://",
        topic_partitions=6,
        web_enabled=False,
        datadir=data,
        topic_disable_leader=True,
    )
    topic = app.topic(
        *(t.name for t in catalogue.event_topics),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(topic)
    async def floor(stream: Any) -> None:
        events = stream.noack()
        async for event in events.events():
            default_codec().decode_any(event.message.value, ("ViewEvent",))
            await events.ack(event)

    worker = faust.Worker(app, loglevel="warn", redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


def faust_floor(kafka: KafkaSettings, catalogue: Catalogue, n: int, timeout: float) -> float:
    """Events/s of :func:`faust_floor_app` on the backlog, from its committed offsets."""
    data = tempfile.mkdtemp(prefix="nearline-floor-")
    proc = subprocess.Popen(  # noqa: S603 - this very script, with our own arguments
        [sys.executable, __file__, "--floor-app", catalogue.prefix, data],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    admin_consumer = Consumer({**kafka.client_config(), "group.id": f"{catalogue.prefix}floor"})
    tps = [TopicPartition(catalogue.topic("events.view").name, p) for p in range(6)]
    first = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done = sum(max(tp.offset, 0) for tp in admin_consumer.committed(tps, timeout=10))
            if done and first is None:
                first = (time.perf_counter(), done)
            if done >= n:
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(60)
        admin_consumer.close()
    assert first is not None, "the floor app committed nothing"
    return (done - first[1]) / max(time.perf_counter() - first[0], 1e-3)


def state_memory(users: int, interactions: int, items: int = 1682) -> tuple[int, int]:
    """Bytes of state for ``users`` users with ``interactions`` views each: as the table
    holds it (compact bytes), and as Python objects (the reference)."""
    rng = random.Random(1)
    limits = Limits()

    def state(u: int) -> UserState:
        picked = [str(rng.randrange(1, items)) for _ in range(interactions)]
        ts = 1_700_000_000_000
        recent = tuple((i, "view", ts + n * 60_000, 1.0) for n, i in enumerate(picked))
        ids = "".join(f"{rng.getrandbits(64):016x}" for _ in picked)
        return UserState(
            counts=(0, 0, interactions),
            session=(f"s{u}", "tv", ts),
            recent=recent[-limits.recent :],
            seen=tuple(dict.fromkeys(picked))[-limits.seen :],
            event_ids=ids[-limits.event_ids * 16 :],
            offsets=(-1, -1, 1000 + u),
        )

    tracemalloc.start()
    table = {f"{u}".encode(): state(u).to_bytes() for u in range(users)}
    compact = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del table
    tracemalloc.start()
    objects = {f"{u}".encode(): state(u) for u in range(users)}
    loose = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del objects
    return compact, loose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--events", type=int, default=100_000, help="ML-100K ratings to use")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--memory-users", type=int, default=100_000)
    parser.add_argument("--floor-app", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_app:
        return faust_floor_app(*args.floor_app)
    kafka = load(KafkaSettings)
    start = time.perf_counter()
    model, records = ml_model(args.epochs)
    records = records[: args.events]
    print(
        f"model: {len(model.item_ids)} items, {len(model.user_ids)} users, dim {model.dim}, "
        f"trained in {time.perf_counter() - start:.1f}s; {len(records)} events"
    )
    print(
        f"pipeline alone, a set per event (reference): {pipeline_alone(model, records):,.0f} ev/s"
    )
    per_event, sets = worker_run(
        kafka,
        model,
        records,
        {"NEARLINE_WORKER_COALESCE_MAX_EVENTS": "1"},
        "per event",
        args.timeout,
    )
    print(f"worker, a set per event:                     {per_event:,.0f} ev/s ({sets:,} sets)")
    coalesced, sets = worker_run(kafka, model, records, {}, "coalesced", args.timeout)
    print(f"worker, bursts coalesced (default):          {coalesced:,.0f} ev/s ({sets:,} sets)")
    catalogue = fresh_catalogue(kafka)
    with EventProducer(kafka, catalogue) as producer:
        for record in records:
            producer.send("ViewEvent", record)
    raw = raw_consume(kafka, catalogue.topic("events.view").name, len(records))
    print(f"raw confluent-kafka consume (reference):     {raw:,.0f} ev/s")
    floor = faust_floor(kafka, catalogue, len(records), args.timeout)
    print(f"Faust decode + ack only (reference):         {floor:,.0f} ev/s")
    compact, loose = state_memory(args.memory_users, 20)
    per = 100_000 / args.memory_users
    print(
        f"state of {args.memory_users:,} users x 20 views, per 100k users: table (compact JSON "
        f"bytes) {compact * per / 2**20:,.0f} MiB; same states as Python objects "
        f"{loose * per / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
