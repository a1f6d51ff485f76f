"""Corrupt models (issue #8, item 5): five bad publications on the ``models`` topic, each
refused by both readers while HTTP load and events keep flowing.

A server (the serving app under uvicorn) and a stream worker (``python -m streams``) follow
the topic of one private stack, with a good model v5 in force. Then, in turn: a truncated
chunk (v6), a chunk whose data does not match its checksum (v7), a manifest whose shapes
are wrong (v8), a manifest without chunks (v9), and a valid but older model (v4). Each must
be refused by the server (``/v1/models/current`` stays v5 and lists the refusal; answers
still carry v5) and by the worker (its sets stay on v5; its log says why), with zero
failed HTTP requests. A good v10 at the end must be taken by both: the followers were
alive all along.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from chaos_services import HttpLoad, ServerThread, SetWatcher, summary, wait_until
from confluent_kafka import Producer
from private_stack import PrivateStack
from worker_harness import Deployment, WorkerProcess, make_model

from schemas.artifact import ModelArtifact
from schemas.catalogue import MODEL_MANIFEST_KEY, MODELS_MAX_MESSAGE_BYTES, model_chunk_key
from schemas.codec import default_codec
from schemas.events import Context, ModelChunk, ModelManifest, ViewEvent
from schemas.model_chunks import manifest_for, split
from schemas.model_publisher import publish_model
from schemas.producer import EventProducer
from serving.app import create_app
from serving.settings import ServingSettings

CURRENT = 5
USERS = [f"u{n}" for n in range(8)]
TV = Context("s1", "tv")


class Raw:
    """Writes chunks and manifests as given, bypassing the publisher's care."""

    def __init__(self, deployment: Deployment) -> None:
        self.topic = deployment.catalogue.topic("models").name
        self.codec = default_codec()
        config = {**deployment.kafka.client_config(), "message.max.bytes": MODELS_MAX_MESSAGE_BYTES}
        self.producer = Producer(config)

    def parts(self, model: ModelArtifact) -> tuple[ModelManifest, list[ModelChunk]]:
        data = model.to_bytes()
        chunks = split(model.version, data, 1024)  # several chunks, so one can go bad
        return manifest_for(model, data, len(chunks)), chunks

    def send(self, chunks: list[ModelChunk], manifest: ModelManifest) -> None:
        for chunk in chunks:
            value = self.codec.encode(ModelChunk.SCHEMA, chunk.to_dict())
            self.producer.produce(self.topic, value, model_chunk_key(chunk.version, chunk.index))
        value = self.codec.encode(ModelManifest.SCHEMA, manifest.to_dict())
        self.producer.produce(self.topic, value, MODEL_MANIFEST_KEY)
        assert self.producer.flush(30) == 0


def truncated_chunk(raw: Raw) -> None:
    manifest, chunks = raw.parts(make_model(6, seed=6))
    last = chunks[-1]
    cut = ModelChunk.of(last.version, last.index, last.count, last.data[:-10])
    raw.send([*chunks[:-1], cut], manifest)


def wrong_checksum(raw: Raw) -> None:
    manifest, chunks = raw.parts(make_model(7, seed=7))
    bad = dataclasses.replace(chunks[1], data=b"\x00" + chunks[1].data[1:])  # sha256 kept
    raw.send([chunks[0], bad, *chunks[2:]], manifest)


def wrong_shapes(raw: Raw) -> None:
    manifest, chunks = raw.parts(make_model(8, seed=8))
    shapes = {**manifest.shapes, "item_biases": (39,)}
    raw.send(chunks, dataclasses.replace(manifest, shapes=shapes))


def manifest_without_chunks(raw: Raw) -> None:
    manifest, _ = raw.parts(make_model(9, seed=9))
    raw.send([], manifest)


def older_version(raw: Raw) -> None:
    manifest, chunks = raw.parts(make_model(4, seed=4))
    raw.send(chunks, manifest)


ATTEMPTS: list[tuple[str, int, Callable[[Raw], None], str]] = [
    ("truncated chunk", 6, truncated_chunk, "artifact is"),
    ("wrong checksum", 7, wrong_checksum, "sha256 mismatch"),
    ("wrong shapes", 8, wrong_shapes, "shapes differ from the manifest"),
    ("manifest without chunks", 9, manifest_without_chunks, "manifest without chunks"),
    ("older version", 4, older_version, f"not newer than the current v{CURRENT}"),
]


@dataclass
class Drip:
    """A view every 100 ms through the event producer; each event's send time."""

    deployment: Deployment
    sent: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Drip:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        with EventProducer(self.deployment.kafka, self.deployment.catalogue) as producer:
            while not self._stop.is_set():
                event = ViewEvent(USERS[n % len(USERS)], f"i{n % 40}", 60_000, 0.9, TV)
                producer.send_event(event)
                producer.flush(10)
                self.sent[event.event_id] = time.monotonic()
                n += 1
                self._stop.wait(0.1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


@pytest.fixture
def deployment(private_stack: PrivateStack, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(
        private_stack.bootstrap,
        uuid.uuid4().hex[:8],
        tmp_path,
        NEARLINE_WORKER_COALESCE_MAX_EVENTS="1",
    )
    yield deployment
    deployment.close()


def _refusal_logged(worker: WorkerProcess, version: int) -> str | None:
    marker = f"model v{version} refused, keeping v{CURRENT}: "
    for line in worker.tail(200_000).splitlines():
        if marker in line:
            return str(line.split(marker, 1)[1].strip())
    return None


def _served_version(body: dict[str, Any]) -> int | None:
    """The model version an answer was computed with: recommendations name the replica's
    model in force, /v1/models/current its version, similar items their model."""
    for name in ("serving_model_version", "version", "model_version"):
        if name in body:
            return int(body[name])
    return None


def _server_refused(current: Callable[[], dict[str, Any]], version: int) -> bool:
    return any(r["version"] == version for r in current()["refusals"])


def test_corrupt_models_are_refused_by_server_and_worker_with_no_failed_request(
    private_stack: PrivateStack, deployment: Deployment
) -> None:
    started = time.monotonic()
    publish_model(deployment.kafka, deployment.catalogue, make_model(CURRENT))
    worker = deployment.worker()
    app = create_app(ServingSettings(topic_prefix=deployment.prefix), kafka=deployment.kafka)
    requests = [
        "/v1/users/known/recommendations",
        "/v1/users/u1/recommendations",
        "/v1/users/stranger/recommendations?recent=i3,i7",
        "/v1/items/i1/similar",
        "/v1/models/current",
    ]
    raw = Raw(deployment)
    outcomes: list[tuple[str, int, str, str]] = []
    recs = deployment.catalogue.topic("recommendations").name
    with (
        ServerThread(app) as server,
        server.client() as client,
        SetWatcher(deployment.kafka, recs) as watcher,
    ):

        def current() -> dict[str, Any]:
            return dict(client.get("/v1/models/current").json())

        wait_until(lambda: current()["version"] == CURRENT, 60, f"the server's v{CURRENT}")
        load = HttpLoad(server.url, requests, threads=2, pause=0.01)
        with load, Drip(deployment) as drip:
            wait_until(
                lambda: any(s.model_version == CURRENT for s in watcher.sets()),
                60,
                f"a set from the worker on v{CURRENT}",
                alive=[worker],
            )
            for name, version, publish, _ in ATTEMPTS:
                publish(raw)
                wait_until(partial(_server_refused, current, version), 30, f"the server: {name}")
                wait_until(
                    partial(_refusal_logged, worker, version),
                    30,
                    f"the worker refusing {name}",
                    alive=[worker],
                )
                refusal = [r for r in current()["refusals"] if r["version"] == version][-1]
                logged = _refusal_logged(worker, version) or ""
                outcomes.append((name, version, refusal["reason"], logged))
                assert current()["version"] == CURRENT
            last_bad = time.monotonic()
            # Events sent after the last refusal still get sets, on the current model.
            wait_until(
                lambda: any(s.at > last_bad for s in watcher.sets()),
                30,
                "a set after the last refusal",
                alive=[worker],
            )
            published = time.monotonic()  # before: the swap may beat publish_model's return
            publish_model(deployment.kafka, deployment.catalogue, make_model(10, seed=10))
            wait_until(lambda: current()["version"] == 10, 30, "the server taking v10")
            wait_until(
                lambda: any(s.model_version == 10 for s in watcher.sets()),
                30,
                "the worker taking v10",
                alive=[worker],
            )
            switched = time.monotonic()
        worker.check_alive()
        sets = watcher.sets()
    answers = load.answers

    print(f"\ncorrupt models: v{CURRENT} in force, then:")
    for name, version, served, logged in outcomes:
        print(f"  v{version} {name:24} server: {served}\n  {'':28} worker: {logged}")
    before = [a for a in answers if a.at < published]
    versions_before = Counter(_served_version(a.body) for a in before if a.body is not None)
    set_versions = Counter(s.model_version for s in sets if s.at < published)
    print(f"  HTTP during the sequence: {summary(before)}; versions served {dict(versions_before)}")
    print(
        f"  worker sets during the sequence: {sum(set_versions.values())}, model versions "
        f"{dict(set_versions)} ({len(drip.sent)} events sent)"
    )
    print(
        f"  then v10: both switched {switched - published:.2f} s after publishing; in all "
        f"{summary(answers)}; duration {time.monotonic() - started:.1f} s"
    )
    for a in load.failures()[:5]:
        print(f"  ! {a.path}: {a.status} {a.error}")

    for name, _, served, logged in outcomes:
        expected = dict((n, e) for n, _, _, e in ATTEMPTS)[name]
        assert expected in served and expected in logged, (name, served, logged)
    assert not load.failures(), f"{len(load.failures())} failed requests"
    assert set(versions_before) == {CURRENT}, versions_before
    assert set(set_versions) == {CURRENT}, set_versions
    for a in before:
        if a.body is not None and a.body.get("source") in ("online", "nearline"):
            assert a.body["model_version"] == CURRENT, a.body
