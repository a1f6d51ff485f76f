"""What the chaos tests (PostgreSQL outage, fuzzed events, corrupt models) run and measure.

- :class:`SinkProcess`: ``nearline sink`` as a subprocess, configured from the environment
  exactly as an operator starts it, with its log in a file;
- :class:`ServerThread`: the serving app under uvicorn in a thread (its lifespan runs the
  background readers as in production);
- :class:`HttpLoad`: paced client threads that record every answer, so a test can count
  failed requests per phase;
- :func:`group_lag`, :func:`read_to_end`, :func:`produce`: Kafka reads and writes that
  wait on the broker's offsets instead of sleeping.

Example::

    sink = SinkProcess(sink_env(bootstrap, url, prefix, schema), tmp / "sink.log").start()
    wait_until(lambda: group_lag(kafka, group, topics) == 0, 60, "the sink caught up",
               alive=[sink])
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import uvicorn
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from schemas.settings import KafkaSettings


class Alive(Protocol):
    def check_alive(self) -> None: ...


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    *,
    alive: Iterable[Alive] = (),
    every: float = 0.2,
) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` s, or at once if a process died."""
    deadline = time.monotonic() + timeout
    processes = list(alive)
    while not condition():
        for process in processes:
            process.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


class SinkProcess:
    """``python -m deploy.cli sink`` (what ``nearline sink`` runs), logging to ``log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SinkProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", "sink"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"the sink exited ({self.proc.returncode}):\n{self.tail()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 4000) -> str:
        return self.text()[-chars:]

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (the sink finishes its batch and leaves the group); its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the sink ignored SIGTERM for {timeout:g} s; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def sink_env(
    bootstrap: str, database_url: str, prefix: str, db_schema: str, **extra: str
) -> dict[str, str]:
    """The environment of a sink on one deployment (its own group, prefix and schema)."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "NEARLINE_TOPIC_PREFIX": prefix,
        "NEARLINE_DB_SCHEMA": db_schema,
        "NEARLINE_SINK_GROUP_ID": f"{prefix}nearline-sink",
        "NEARLINE_SINK_PROGRESS_INTERVAL_S": "1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class ServerThread:
    """uvicorn serving ``app`` on a free port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def check_alive(self) -> None:
        if not self.thread.is_alive():
            pytest.fail("the server thread stopped")

    def client(self, timeout: float = 10) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class Answer:
    at: float
    """time.monotonic() when the answer came."""
    path: str
    status: int
    """HTTP status, or 0 when the request itself failed (connection, timeout)."""
    body: dict[str, Any] | None
    error: str = ""


@dataclass
class HttpLoad:
    """``threads`` clients, each sending ``requests`` in turn with ``pause`` s between them,
    recording every answer until :meth:`stop`."""

    base_url: str
    requests: Sequence[str]
    threads: int = 2
    pause: float = 0.02
    timeout: float = 5.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> HttpLoad:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
            i = n
            while not self._stop.is_set():
                path = self.requests[i % len(self.requests)]
                i += 1
                try:
                    response = client.get(path)
                    body = response.json() if response.status_code == 200 else None
                    answer = Answer(time.monotonic(), path, response.status_code, body)
                    if response.status_code != 200:
                        answer.error = response.text[:300]
                except (httpx.HTTPError, ValueError) as exc:
                    answer = Answer(time.monotonic(), path, 0, None, repr(exc)[:300])
                with self._lock:
                    self.answers.append(answer)
                self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.at < end]

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]

    def count(self) -> int:
        with self._lock:
            return len(self.answers)


def summary(answers: Sequence[Answer]) -> str:
    """``N requests, F failed, sources {...}`` for a report line (``-``: no source, as in
    /v1/models/current)."""
    sources = Counter(str(a.body.get("source", "-")) for a in answers if a.body)
    failed = sum(a.status != 200 for a in answers)
    return f"{len(answers)} requests, {failed} failed, sources {dict(sorted(sources.items()))}"


def group_lag(kafka: KafkaSettings, group: str, topics: Iterable[tuple[str, int]]) -> int:
    """Messages not yet committed by ``group`` over ``topics`` ((name, partitions) pairs);
    a partition the group never committed counts from its start."""
    tps = [TopicPartition(name, p) for name, n in topics for p in range(n)]
    admin = AdminClient(dict(kafka.client_config()))
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])
    committed = {
        (tp.topic, tp.partition): tp.offset for tp in future[group].result().topic_partitions
    }
    probe = Consumer({**kafka.client_config(), "group.id": f"{group}-lag-probe"})
    try:
        lag = 0
        for tp in tps:
            low, high = probe.get_watermark_offsets(tp, timeout=10)
            done = committed.get((tp.topic, tp.partition), -1)
            lag += high - max(done, low)
        return lag
    finally:
        probe.close()


def read_to_end(kafka: KafkaSettings, topic: str, timeout: float = 60) -> list[Message]:
    """Every message of ``topic`` up to the high watermarks of the moment of the call."""
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for p in meta.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        positions = {p: 0 for p in ends}
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"could not read {topic} to {ends}: {positions}"
            for msg in consumer.consume(1000, 0.5):
                error = msg.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    continue
                p, offset = msg.partition(), msg.offset()
                assert p is not None and offset is not None
                if offset < ends[p]:
                    out.append(msg)
                positions[p] = offset + 1
        return out
    finally:
        consumer.close()


@dataclass
class Produced:
    """Where one produced message landed."""

    topic: str
    partition: int
    offset: int


def produce(
    kafka: KafkaSettings,
    messages: Sequence[tuple[str, bytes | None, bytes | None]],
    *,
    max_bytes: int = 2_000_000,
) -> list[Produced]:
    """Produce (topic, key, value) triples in order and wait for every acknowledgement;
    returns where each landed, in the same order."""
    producer = Producer(
        {
            **kafka.client_config(),
            "message.max.bytes": max_bytes,
            "linger.ms": 5,
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    landed: list[Produced | None] = [None] * len(messages)
    errors: list[str] = []

    def report(n: int) -> Callable[[KafkaError | None, Message], None]:
        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(f"message {n}: {err.str()}")
            else:
                landed[n] = Produced(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)

        return delivered

    for n, (topic, key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=report(n))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0, "the broker did not acknowledge every message"
    assert not errors, errors[:5]
    assert all(p is not None for p in landed)
    return [p for p in landed if p is not None]


@dataclass
class SeenSet:
    at: float
    """time.monotonic() when this process read it."""
    user_id: str
    trigger: str | None
    model_version: int
    source: str


class SetWatcher:
    """Reads the ``recommendations`` topic from the start in a thread, noting when each
    set arrived."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self.seen: list[SeenSet] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SetWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from schemas.codec import default_codec
        from schemas.events import RecommendationSet

        consumer = Consumer({**self.kafka.client_config(), "group.id": f"{self.topic}-watcher"})
        meta = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        codec = default_codec()
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(500, 0.2):
                    if msg.error() is not None or not msg.value():
                        continue
                    recs = RecommendationSet.from_dict(
                        codec.decode(RecommendationSet.SCHEMA, msg.value())
                    )
                    seen = SeenSet(
                        time.monotonic(),
                        recs.user_id,
                        recs.trigger_event_id,
                        recs.model_version,
                        recs.source,
                    )
                    with self._lock:
                        self.seen.append(seen)
        finally:
            consumer.close()

    def sets(self) -> list[SeenSet]:
        with self._lock:
            return list(self.seen)

    def first_by_trigger(self) -> dict[str, SeenSet]:
        out: dict[str, SeenSet] = {}
        for s in self.sets():
            if s.trigger is not None and s.trigger not in out:
                out[s.trigger] = s
        return out

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
