"""Time from a model being published to a running server serving it, beside Kafka alone.

Against a real server process on the ML-100K deployment: each round publishes a new
version of the deployment's model (same arrays, new version: 1,682 items, 943 users) with
``publish_model``, then polls ``GET /v1/models/current`` every 2 ms until the server
reports it. Measured from the manifest's acknowledgement (``publish_model`` returning:
the model is live from then on) to the first answer naming the version. The reference, in
the same rounds, is a bare consumer tailing ``models``: when the manifest reaches any
reader at all (delivery, without verifying or preparing the model).

    eval "$(nearline dev env)"
    python benchmarks/serving_reload.py [--prefix b1] [--rounds 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
import uuid

import httpx
import numpy as np
from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from serving_deployment import ServerProcess, movielens

from schemas.catalogue import MODEL_MANIFEST_KEY
from schemas.model_loader import load_latest, scan_models
from schemas.model_publisher import publish_model


class ManifestWatcher:
    """Records when each manifest arrives at a plain consumer (the Kafka floor)."""

    def __init__(self, config: dict[str, str], topic: str) -> None:
        self.arrivals: list[float] = []
        self._consumer = Consumer({**config, "group.id": f"bench-{uuid.uuid4().hex}"})
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.1)
            if msg is not None and msg.error() is None and msg.key() == MODEL_MANIFEST_KEY:
                self.arrivals.append(time.perf_counter())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=f"bench{uuid.uuid4().hex[:8]}")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    deployment = movielens(args.prefix)
    model = load_latest(deployment.kafka, deployment.catalogue, timeout=60)
    assert model is not None
    served, floor, publishing = [], [], []
    with ServerProcess(deployment) as server, httpx.Client(base_url=server.url) as client:
        topic = deployment.catalogue.topic("models").name
        watcher = ManifestWatcher(deployment.kafka.client_config(), topic)
        time.sleep(2)  # let the watcher's assignment settle at the end of the log
        for _ in range(args.rounds):
            scan = scan_models(deployment.kafka, deployment.catalogue, verify=False)
            candidate = dataclasses.replace(model, version=scan.next_version)
            begin = time.perf_counter()
            publish_model(deployment.kafka, deployment.catalogue, candidate, scan=scan)
            acked = time.perf_counter()
            while client.get("/v1/models/current").json()["version"] != candidate.version:
                time.sleep(0.002)
            done = time.perf_counter()
            time.sleep(0.3)  # the watcher has seen the manifest by now
            publishing.append(acked - begin)
            served.append(done - acked)
            floor.append(max(0.0, watcher.arrivals[-1] - acked))
        watcher.close()
    print(f"model: {len(model.item_ids)} items, {len(model.user_ids)} users, {model.dim} dims")
    print(f"{args.rounds} rounds; milliseconds after the manifest was acknowledged")
    print(f"{'':34} {'median':>8} {'max':>8}")
    for name, values in (
        ("manifest reaches a bare consumer", floor),
        ("server serves the new version", served),
        ("(publish_model itself)", publishing),
    ):
        print(f"{name:34} {np.median(values) * 1000:8.1f} {max(values) * 1000:8.1f}")


if __name__ == "__main__":
    main()
