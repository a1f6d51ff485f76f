"""Shared by the serving benchmarks: an ML-100K deployment and a real server process.

``movielens(prefix)`` replays ML-100K into its own topics and schema, stores it with the
sink and trains and publishes a model with ``nearline train`` (about a minute), unless the
prefix's topics already hold a model (then it is reused: pass ``--prefix`` again).
``ServerProcess`` runs ``python -m serving`` against it on a free port.

    eval "$(nearline dev env)"
    python benchmarks/serving_http.py              # sets up a fresh deployment
    python benchmarks/serving_http.py --prefix b1  # reuses it
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import httpx

from batch.sink.loop import run_sink
from batch.sink.settings import SinkSettings
from deploy.processes import free_port
from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.errors import BrokerUnavailable
from schemas.model_loader import latest_version
from schemas.settings import DatabaseSettings, KafkaSettings, load


@dataclass(frozen=True)
class MovieLensDeployment:
    kafka: KafkaSettings
    catalogue: Catalogue
    database_url: str
    db_schema: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "NEARLINE_TOPIC_PREFIX": self.catalogue.prefix,
            "NEARLINE_DB_SCHEMA": self.db_schema,
            **extra,
        }


def movielens(prefix: str) -> MovieLensDeployment:
    kafka = load(KafkaSettings)
    deployment = MovieLensDeployment(
        kafka, Catalogue(f"{prefix}."), load(DatabaseSettings).url(), prefix
    )
    ensure_topics(kafka, deployment.catalogue)
    if _published(deployment) > 0:
        return deployment
    print(f"setting up ML-100K under prefix {prefix} (replay, sink, train)...", file=sys.stderr)
    cli = [sys.executable, "-m", "deploy.cli"]
    subprocess.run([*cli, "events", "replay", "movielens"], env=deployment.env(), check=True)  # noqa: S603
    run_sink(
        kafka,
        deployment.database_url,
        SinkSettings(
            topic_prefix=deployment.catalogue.prefix, db_schema=prefix, stop_when_idle_s=3
        ),
    )
    report_dir = tempfile.mkdtemp(prefix="nearline-bench-report-")
    train = [*cli, "train", "--holdout", "ua", "--report-dir", report_dir]
    subprocess.run(train, env=deployment.env(), check=True)  # noqa: S603
    return deployment


def _published(deployment: MovieLensDeployment) -> int:
    for attempt in range(10):
        try:
            return latest_version(deployment.kafka, deployment.catalogue, timeout=30)
        except BrokerUnavailable:  # a topic created a moment ago may not have a leader yet
            if attempt == 9:
                raise
            time.sleep(1)
    return 0


class ServerProcess:
    """``python -m serving`` on a free port; waits until ready and the sets are read.

    ``cpus`` (e.g. ``"1"``) runs it under ``taskset -c cpus``, every thread included.
    """

    def __init__(
        self, deployment: MovieLensDeployment, cpus: str | None = None, **env: str
    ) -> None:
        self.cpus = cpus
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {
            "NEARLINE_SERVING_PORT": str(self.port),
            "NEARLINE_SERVING_LOG_LEVEL": "warning",
        }
        self.env = deployment.env(**settings, **env)

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "serving"]
        if self.cpus is not None:
            command = ["taskset", "-c", self.cpus, *command]
        self.process = subprocess.Popen(command, env=self.env)  # noqa: S603
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, "the server exited"
            try:
                ready = httpx.get(f"{self.url}/ready", timeout=2).json()
                if (
                    ready["ready"]
                    and ready["recommendations"]["caught_up"]
                    and ready["popularity_loaded"]
                ):
                    return self
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)
