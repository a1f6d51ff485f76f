"""`nearline demo` as a user runs it: a subprocess against the real broker and database,
with small limits. It must print its summary, and leave nothing behind: no process, no
topic, no consumer group, no schema, no run folder; also when interrupted with Ctrl-C."""
# ruff: noqa: S608  (the schema name comes from the demo's own output)

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from confluent_kafka.admin import AdminClient

from deploy.processes import start_time

pytestmark = pytest.mark.integration


@dataclass
class DemoRun:
    """The demo in a subprocess of its own session (as a terminal would run it)."""

    proc: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.threads = [
            threading.Thread(target=self._pump, args=(s, out), daemon=True)
            for s, out in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _pump(stream: object, out: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            out.append(line)

    @property
    def err(self) -> str:
        return "".join(self.stderr)

    @property
    def out(self) -> str:
        return "".join(self.stdout)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.err:
            assert self.proc.poll() is None, f"the demo ended early:\n{self.err[-3000:]}"
            assert time.monotonic() < deadline, (
                f"no {text!r} after {timeout} s:\n{self.err[-3000:]}"
            )
            time.sleep(0.2)

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"the demo did not finish in {timeout} s:\n{self.err[-3000:]}")
        for thread in self.threads:
            thread.join(10)
        return code

    def run_id(self) -> str:
        match = re.search(r"demo run (demo-[0-9a-f]+):", self.err)
        assert match, self.err[-2000:]
        return match.group(1)

    def child_pids(self) -> list[int]:
        match = re.search(r"worker pid (\d+), server pid (\d+)", self.err)
        assert match, self.err[-2000:]
        return [int(match.group(1)), int(match.group(2))]


StartDemo = Callable[..., DemoRun]


@pytest.fixture
def start_demo(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> Iterator[StartDemo]:
    runs: list[DemoRun] = []

    def start(*args: str) -> DemoRun:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": database_url,
            "NEARLINE_STATE_DIR": str(tmp_path / "state"),
            # 30% history instead of 80% keeps the test well under a minute and a half.
            "NEARLINE_DEMO_HISTORY_SHARE": "0.3",
            "NEARLINE_BATCH_REPORT_DIR": str(tmp_path / "reports"),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "demo", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        runs.append(DemoRun(proc))
        return runs[-1]

    yield start
    for run in runs:  # a failed test must not leave a demo running either
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()


def assert_nothing_left(run: DemoRun, kafka_bootstrap: str, database_url: str, tmp: Path) -> None:
    run_id = run.run_id()
    for pid in run.child_pids():
        assert start_time(pid) is None, f"pid {pid} is still running"
    marker = f"NEARLINE_TOPIC_PREFIX={run_id}.".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            assert marker not in environ.read_bytes(), f"{environ.parent} is the run's"
        except OSError:
            continue  # gone meanwhile, or not ours to read
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(run_id)]
    assert topics == []
    groups = admin.list_consumer_groups().result(timeout=10).valid
    assert [g.group_id for g in groups if g.group_id.startswith(run_id)] == []
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        schema = run_id.replace("-", "_")
        query = sa.text("select count(*) from information_schema.schemata where schema_name = :s")
        assert conn.execute(query, {"s": schema}).scalar_one() == 0
    engine.dispose()
    assert not (tmp / "state" / "demo" / run_id).exists()


def figure(text: str, pattern: str) -> list[float]:
    match = re.search(pattern, text)
    assert match, f"no {pattern!r} in:\n{text}"
    return [float(g.replace(",", "")) for g in match.groups()]


def test_the_demo_prints_its_summary_and_leaves_nothing_behind(
    start_demo: StartDemo, kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    run = start_demo("--live-events", "400", "--rate", "200", "--users", "2")
    code = run.finish(timeout=240)
    print(run.out)
    assert code == 0, run.err[-3000:]
    out = run.out
    assert out.count("── user ") == 2 and "before: source offline, model v1" in out
    assert "after : source nearline, model v1" in out
    assert figure(out, r"history +([\d,]+) events replayed, ([\d,]+) stored") == [30_000] * 2
    sent, seconds, rate = figure(out, r"live events +([\d,]+) in ([\d.]+) s: ([\d,]+) events/s")
    assert sent == 400 and 1.5 < seconds < 10 and 40 < rate <= 220
    p50, p99, covered = figure(out, r"event → recs +p50 ([\d.]+) ms, p99 ([\d.]+) ms \(([\d,]+) of")
    assert 0 < p50 <= p99 < 30_000 and covered >= 390
    s50, s99, requests = figure(out, r"serve +p50 ([\d.]+) ms, p99 ([\d.]+) ms \(([\d,]+) req")
    assert 0 < s50 <= s99 < 5_000 and requests >= 4 + 2
    assert figure(out, r"model +v(\d+)") == [1]
    precision, auc = figure(out, r"precision@10 ([\d.]+) .* auc ([\d.]+)")
    assert 0.02 < precision < 1 and 0.7 < auc <= 1
    assert "stopped the worker (exit 0)" in run.err
    assert_nothing_left(run, kafka_bootstrap, database_url, tmp_path)


def test_ctrl_c_in_the_live_phase_stops_everything_cleanly(
    start_demo: StartDemo, kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    run = start_demo("--live-events", "20000", "--rate", "100")
    run.wait_for("[5/6] live", timeout=180)
    time.sleep(2)
    started = time.monotonic()
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    code = run.finish(timeout=90)
    assert code == 130, run.err[-3000:]
    assert time.monotonic() - started < 60
    assert "nearline: interrupted" in run.err and "summary" not in run.out
    assert "stopped the worker" in run.err and "removed the run's" in run.err
    assert_nothing_left(run, kafka_bootstrap, database_url, tmp_path)
