"""Encode+produce throughput of EventProducer, beside raw confluent-kafka in the same run.

The reference produces pre-encoded bytes of exactly the same sizes, with the same producer
configuration, to a topic with the same partitions: what is left between the two is the cost
of our encoding and bookkeeping. Figures, not assertions: run it on a quiet machine.

    eval "$(nearline dev env)"
    python benchmarks/produce_throughput.py --events 300000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from confluent_kafka import Producer

from schemas import movielens
from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.producer import PRODUCER_DEFAULTS, EventProducer
from schemas.settings import KafkaSettings, load


def records(n: int) -> list[dict[str, object]]:
    """n ViewEvent records: MovieLens ratings, cycled with fresh event ids past 100k."""
    base = list(movielens.view_events(movielens.load().ratings))
    out = []
    for i in range(n):
        record = dict(base[i % len(base)])
        if i >= len(base):
            record["event_id"] = str(uuid.uuid4())
        out.append(record)
    return out


def raw(kafka: KafkaSettings, topic: str, payloads: list[tuple[bytes, bytes]]) -> float:
    producer = Producer({**kafka.client_config(), **PRODUCER_DEFAULTS})
    start = time.perf_counter()
    for i, (key, value) in enumerate(payloads):
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return len(payloads) / (time.perf_counter() - start)


def ours(kafka: KafkaSettings, catalogue: Catalogue, batch: list[dict[str, object]]) -> float:
    producer = EventProducer(kafka, catalogue)
    start = time.perf_counter()
    for record in batch:
        producer.send("ViewEvent", record, validate=False)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert producer.delivered == len(batch), (producer.delivered, len(batch))
    return len(batch) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    kafka = load(KafkaSettings)
    catalogue = Catalogue(prefix=f"bench-{uuid.uuid4().hex[:8]}.")
    ensure_topics(kafka, catalogue)
    topic = catalogue.for_event("ViewEvent").name
    batch = records(args.events)
    codec = default_codec()
    version = codec.registry.current("ViewEvent")

    start = time.perf_counter()
    payloads = [(str(r["user_id"]).encode(), codec.encode(version, r)) for r in batch]
    encode_rate = len(batch) / (time.perf_counter() - start)
    size = statistics.mean(len(v) for _, v in payloads)

    raw_rates, our_rates = [], []
    for round_ in range(1, args.rounds + 1):
        raw_rates.append(raw(kafka, topic, payloads))
        our_rates.append(ours(kafka, catalogue, batch))
        print(
            f"round {round_}: raw {raw_rates[-1]:>10,.0f} ev/s   "
            f"EventProducer {our_rates[-1]:>10,.0f} ev/s",
            flush=True,
        )

    best_raw, best_ours = max(raw_rates), max(our_rates)
    print()
    print(f"events per round        {args.events:,} ViewEvents, mean value {size:.0f} bytes")
    print(f"encode only             {encode_rate:>10,.0f} ev/s")
    print(f"raw confluent-kafka     {best_raw:>10,.0f} ev/s   (best of {args.rounds}, reference)")
    print(f"EventProducer           {best_ours:>10,.0f} ev/s   (best of {args.rounds})")
    print(f"ratio                   {best_ours / best_raw:>10.0%}   (goal >= 50%)")
    print(f"goal >= 100,000 ev/s    {'met' if best_ours >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
