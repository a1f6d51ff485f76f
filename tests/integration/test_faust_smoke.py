"""A Faust table backed by a Kafka changelog keeps exact counts across a worker restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("faust_counter_app.py")
KEYS = [f"user{i}" for i in range(10)]
PARTITIONS = 4


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(APP)], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the Faust worker ignored SIGTERM; see {self.log}")


class Reports:
    """Reads the output topic: the latest "op:count" reported for each key."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
        )
        self.consumer.subscribe([topic])
        self.latest: dict[str, tuple[str, int]] = {}

    def wait_for(
        self, op: str, expected: dict[str, int], worker: Worker, timeout: float = 90.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.proc is not None and worker.proc.poll() is not None:
                pytest.fail(
                    f"the Faust worker exited ({worker.proc.returncode}):\n"
                    + worker.log.read_text()[-3000:]
                )
            msg = self.consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            got_op, value = msg.value().decode().split(":")
            self.latest[msg.key().decode()] = (got_op, int(value))
            if all(self.latest.get(k) == (op, n) for k, n in expected.items()):
                return
        pytest.fail(f"after {timeout:g} s the reports were {self.latest}, wanted {op}:{expected}")


def _send(bootstrap: str, topic: str, value: str, repeat: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for _ in range(repeat):
        for key in KEYS:
            producer.produce(topic, key=key.encode(), value=value.encode())
    assert producer.flush(30) == 0


def test_table_counts_survive_restart(
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    create_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    source = create_topic(unique("counter-in"), partitions=PARTITIONS)
    output = create_topic(unique("counter-out"), partitions=PARTITIONS)
    env = {
        **os.environ,
        "COUNTER_BROKER": kafka_bootstrap,
        "COUNTER_APP_ID": unique("counter"),
        "COUNTER_SOURCE": source,
        "COUNTER_OUTPUT": output,
        "COUNTER_PARTITIONS": str(PARTITIONS),
        "COUNTER_DATADIR": str(tmp_path / "data"),
    }
    worker = Worker(env, tmp_path / "worker.log")
    reports = Reports(kafka_bootstrap, output, unique("reader"))
    try:
        worker.start()
        _send(kafka_bootstrap, source, "inc", repeat=100)  # 1000 events, 100 per key
        reports.wait_for("inc", dict.fromkeys(KEYS, 100), worker)
        worker.stop()

        worker.start()  # the table is rebuilt from its changelog
        _send(kafka_bootstrap, source, "probe", repeat=1)
        reports.wait_for("probe", dict.fromkeys(KEYS, 100), worker)
        assert sum(n for _, n in reports.latest.values()) == 1000

        _send(kafka_bootstrap, source, "inc", repeat=100)
        reports.wait_for("inc", dict.fromkeys(KEYS, 200), worker)
        assert sum(n for _, n in reports.latest.values()) == 2000
        worker.stop()
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
        reports.consumer.close()
