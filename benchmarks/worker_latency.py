"""Latency from producing an event to its RecommendationSet, at a steady offered load.

Offers ``--rate`` events/s (MovieLens-100K ratings in time order, with fresh ids and the
current time) for ``--seconds`` to one worker running the ML-100K model, and times each
event from just before ``produce()`` to the arrival of the set it triggered (same process,
same clock). Events coalesced into a burst have no set of their own; their share is
reported as coverage. The reference in the same run is a raw loop in its own process:
consume, decode with the shared codec, produce the event id to an output topic, timed the
same way. Figures, not assertions: run it on a quiet machine.

    eval "$(nearline dev env)"
    python benchmarks/worker_latency.py --rate 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from worker_throughput import fresh_catalogue, ml_model

from schemas.catalogue import Catalogue
from schemas.codec import decode, default_codec
from schemas.events import RecommendationSet
from schemas.model_publisher import publish_model
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings, load

ROOT = Path(__file__).resolve().parent.parent


class Receiver(threading.Thread):
    """Records when each event id first shows up on ``topic`` (read from its end)."""

    def __init__(self, kafka: KafkaSettings, topic: str, event_id: Callable[[bytes], str]):
        super().__init__(daemon=True)
        self.consumer = Consumer({**kafka.client_config(), "group.id": f"lat-{uuid.uuid4()}"})
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(6)])
        self.event_id, self.arrived, self.stop = event_id, {}, threading.Event()  # type: ignore[var-annotated]

    def run(self) -> None:
        # poll(), not consume(n, timeout): consume waits for n messages or the timeout,
        # which would add up to the timeout to every measurement.
        while not self.stop.is_set():
            msg = self.consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                self.arrived.setdefault(self.event_id(msg.value()), time.perf_counter())
        self.consumer.close()


def offer(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    records: list[dict[str, Any]],
    rate: float,
    seconds: float,
    receiver: Receiver,
) -> tuple[dict[str, tuple[str, float]], int]:
    """Send at ``rate`` for ``seconds``; returns send times by event id and sets seen."""
    sent: dict[str, tuple[str, float]] = {}
    config = {"linger.ms": 0}  # time the pipeline, not the client's batching
    with EventProducer(kafka, catalogue, config=config) as producer:
        start, n = time.perf_counter(), int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            record = dict(records[i % len(records)])
            record["event_id"], record["ts"] = str(uuid.uuid4()), int(time.time() * 1000)
            sent[record["event_id"]] = (record["user_id"], time.perf_counter())
            producer.send("ViewEvent", record, validate=False)
    time.sleep(5)  # stragglers
    receiver.stop.set()
    receiver.join()
    return sent, len(receiver.arrived)


def report(
    label: str,
    sent: dict[str, tuple[str, float]],
    arrived: dict[str, float],
    rate: float,
) -> None:
    """Latency of every event to the first set of its user that covers it: the set of the
    burst it belongs to (triggered by it or by a later event of the same user)."""
    sets: dict[str, list[tuple[float, float]]] = {}
    for event_id, at in arrived.items():
        if event_id in sent:
            user, sent_at = sent[event_id]
            sets.setdefault(user, []).append((sent_at, at))
    latencies, own = [], 0
    for event_id, (user, sent_at) in sent.items():
        own += event_id in arrived
        later = [at for trigger_sent, at in sets.get(user, []) if trigger_sent >= sent_at]
        if later:
            latencies.append((min(later) - sent_at) * 1000)
    if not latencies:
        print(f"{label}: nothing arrived")
        return
    p50, p99, top = np.percentile(np.array(latencies), [50, 99, 100])
    print(
        f"{label}: offered {rate:,.0f} ev/s; {len(latencies):,}/{len(sent):,} events covered, "
        f"{own:,} with a set of their own; p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms"
    )


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(  # noqa: S603 - our worker or this script, our arguments
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def warm_up(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    records: list[dict[str, Any]],
    receiver: Receiver,
    timeout: float = 60,
) -> None:
    """Send events until one comes out: the process has joined and is processing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = dict(records[0], event_id=str(uuid.uuid4()))
        with EventProducer(kafka, catalogue) as producer:
            producer.send("ViewEvent", record)
        until = time.monotonic() + 2
        while time.monotonic() < until:
            if record["event_id"] in receiver.arrived:
                return
            time.sleep(0.05)
    raise SystemExit("the process under test produced nothing; see its log")


def echo(prefix: str) -> None:
    """The reference: consume events, decode, produce their ids to ``<prefix>echo``."""
    kafka = load(KafkaSettings)
    catalogue = Catalogue(prefix)
    consumer = Consumer(
        {**kafka.client_config(), "group.id": f"{prefix}echo", "auto.offset.reset": "latest"}
    )
    consumer.subscribe([catalogue.topic("events.view").name])
    producer = Producer({**kafka.client_config(), "linger.ms": 0})
    while True:
        msg = consumer.poll(0.05)
        if msg is not None and msg.error() is None:
            record = decode("ViewEvent", msg.value())
            producer.produce(f"{prefix}echo", record["event_id"].encode(), msg.key())
        producer.poll(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--echo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        return echo(args.echo)
    kafka = load(KafkaSettings)
    model, records = ml_model(args.epochs)
    # The training data stays alive here: without this, this process's own full
    # collections (100+ ms) would be timed as the worker's latency.
    gc.collect()
    gc.freeze()
    logs = Path(tempfile.mkdtemp(prefix="nearline-latency-"))

    catalogue = fresh_catalogue(kafka, "lat")
    prefix = catalogue.prefix
    publish_model(kafka, catalogue, model)
    env = {
        "NEARLINE_TOPIC_PREFIX": prefix,
        "NEARLINE_WORKER_DATADIR": str(logs / "data"),
        "NEARLINE_WORKER_LOGLEVEL": "warn",
    }
    worker = start_process(["-m", "streams"], env, logs / "worker.log")

    def trigger(value: bytes) -> str:
        return str(default_codec().decode(RecommendationSet.SCHEMA, value)["trigger_event_id"])

    try:
        receiver = Receiver(kafka, catalogue.topic("recommendations").name, trigger)
        receiver.start()
        warm_up(kafka, catalogue, records, receiver)
        sent, _ = offer(kafka, catalogue, records, args.rate, args.seconds, receiver)
        report("worker -> RecommendationSet", sent, receiver.arrived, args.rate)
    finally:
        worker.terminate()
        worker.wait(60)

    catalogue = fresh_catalogue(kafka, "lat")
    prefix = catalogue.prefix
    admin = AdminClient(kafka.client_config())  # kept referenced until the topic exists
    admin.create_topics([NewTopic(f"{prefix}echo", 6, 1)])[f"{prefix}echo"].result()
    time.sleep(2)  # let the new partitions get their leaders
    loop = start_process([__file__, "--echo", prefix], {}, logs / "echo.log")
    try:
        receiver = Receiver(kafka, f"{prefix}echo", bytes.decode)
        receiver.start()
        warm_up(kafka, catalogue, records, receiver)
        sent, _ = offer(kafka, catalogue, records, args.rate, args.seconds, receiver)
        report("raw consume/decode/produce loop (reference)", sent, receiver.arrived, args.rate)
    finally:
        loop.terminate()
        loop.wait(60)
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
