"""Driving the worker through faults: its group's progress, its dead letters, its counters.

Example::

    precreate_changelogs(deployment)          # see the function for why
    worker = deployment.worker()
    wait_for_no_lag(deployment, [worker])
    stats = counters(worker)                  # after worker.stop()
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from fault_processes import RoleProcess
from fault_workload import CommittedReader, committed_offsets, end_offsets
from worker_harness import Deployment, WorkerProcess

from schemas.catalogue import EVENT_PARTITIONS


def precreate_changelogs(deployment: Deployment, timeout: float = 30) -> None:
    """Create the worker's changelog topics before its first start, and wait for leaders.

    Works around a start-up race (see test_a_fresh_worker_under_traffic_dead_letters_
    nothing): Faust creates the ``trending`` changelog itself at start, and when its
    consumer's first metadata does not list the topic yet, every weighted event is
    dead-lettered ("processing-failed: PartitionsMismatch ... 0 partitions") until the next
    metadata refresh. Tests about other faults create the topics first, so that only their
    own fault is measured.
    """
    names = [f"{deployment.group}-user_state-changelog", f"{deployment.group}-trending-changelog"]
    admin = AdminClient(dict(deployment.kafka.client_config()))
    new = [NewTopic(n, EVENT_PARTITIONS, 1, config={"cleanup.policy": "compact"}) for n in names]
    for future in admin.create_topics(new, operation_timeout=30).values():
        future.result(timeout=30)
    probe = Consumer({**deployment.kafka.client_config(), "group.id": "fault-leader-probe"})
    deadline = time.monotonic() + timeout
    try:
        for name in names:
            for p in range(EVENT_PARTITIONS):
                while True:
                    try:
                        probe.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                        break
                    except KafkaException:
                        assert time.monotonic() < deadline, f"{name}[{p}] has no leader"
                        time.sleep(0.2)
    finally:
        probe.close()


def committed_total(deployment: Deployment, group: str | None = None) -> int:
    """Events committed by ``group`` (default: the worker's), over the event topics."""
    offsets = committed_offsets(deployment.kafka, group or deployment.group, deployment.catalogue)
    return sum(offsets.values())


def wait_until_committed(
    deployment: Deployment, worker: WorkerProcess, at_least: int, timeout: float = 180
) -> int:
    """Wait until the worker group has committed ``at_least`` events; the committed total.
    Polled every 50 ms, so that the caller acts within moments of the commit."""
    reader = CommittedReader(deployment.kafka, deployment.group, deployment.catalogue)
    deadline = time.monotonic() + timeout
    try:
        while (total := sum(reader.offsets().values())) < at_least:
            worker.check_alive()
            assert time.monotonic() < deadline, (
                f"{total} of {at_least} committed after {timeout} s; the worker's last "
                f"progress lines:\n{progress_lines(worker)}"
            )
            time.sleep(0.05)
    finally:
        reader.close()
    return total


def lag(deployment: Deployment, group: str | None = None) -> int:
    """Events not yet committed by ``group`` (default: the worker's), over the event topics."""
    ends = end_offsets(deployment.kafka, deployment.catalogue)
    committed = committed_offsets(deployment.kafka, group or deployment.group, deployment.catalogue)
    return sum(high - committed.get(tp, 0) for tp, high in ends.items())


def wait_for_no_lag(
    deployment: Deployment,
    processes: Sequence[WorkerProcess | RoleProcess],
    group: str | None = None,
    timeout: float = 300,
) -> float:
    """Wait until ``group`` (default: the worker's) has committed every event; the seconds
    it took."""
    started = last_said = time.monotonic()
    while (behind := lag(deployment, group)) > 0:
        for process in processes:
            process.check_alive()
        assert time.monotonic() - started < timeout, (
            f"{behind} uncommitted after {timeout} s; the last progress lines:\n"
            + "\n".join(progress_lines(p) for p in processes)
        )
        if time.monotonic() - last_said >= 30:  # slow or stalled: the figures tell which
            last_said = time.monotonic()
            waited = last_said - started
            print(f"{group or deployment.group}: {behind} uncommitted after {waited:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def progress_lines(process: WorkerProcess | RoleProcess, last: int = 6) -> str:
    """The last progress lines a worker logged (see streams.progress), or its log's tail."""
    text = process.tail(2_000_000)
    lines = [line for line in text.splitlines() if "progress:" in line]
    return "\n".join(lines[-last:]) if lines else text[-3000:]


def dead_letters(deployment: Deployment) -> int:
    """Messages on the dead-letter topic (written by the worker or a sink)."""
    topic = deployment.catalogue.topic("events.dlq")
    probe = Consumer({**deployment.kafka.client_config(), "group.id": "fault-dlq-probe"})
    try:
        return sum(
            probe.get_watermark_offsets(TopicPartition(topic.name, p), timeout=10)[1]
            for p in range(topic.partitions)
        )
    finally:
        probe.close()


@dataclass(frozen=True)
class Counters:
    applied: int
    duplicates: int
    published: int
    dead: int


def counters(worker: WorkerProcess) -> Counters:
    """The counters a worker logs when it stops cleanly (SIGTERM)."""
    found = re.search(
        r"(\d+) events applied, (\d+) duplicates ignored, (\d+) sets published, (\d+) dead",
        worker.log.read_text(errors="replace"),
    )
    assert found is not None, worker.tail()
    return Counters(*(int(g) for g in found.groups()))
