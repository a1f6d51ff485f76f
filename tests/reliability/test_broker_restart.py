"""Issue #8, item 2: the broker is restarted mid-stream, gracefully and then with SIGKILL.

While a producer (the project's idempotent EventProducer, acks=all), the sink (``nearline
sink``) and the worker (``python -m streams``) run, the private broker is restarted twice:
once with SIGTERM (an operator's restart) and once with SIGKILL (a crash). Afterwards:

- the producer lost nothing it was acknowledged for, and wrote nothing twice: the broker's
  log holds every produced event exactly once;
- every produced event is in PostgreSQL exactly once (by event id, and nothing else);
- the worker's per-user state is exact, and nothing went to the dead-letter topic.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from fault_processes import RoleProcess, kill_broker, restart_broker
from fault_worker import committed_total, dead_letters, precreate_changelogs, wait_for_no_lag
from fault_workload import (
    PacedProducer,
    Truth,
    log_counts,
    read_log,
    synthetic_events,
)
from private_stack import PrivateStack
from worker_harness import Deployment, make_model

from schemas.database import make_engine
from schemas.model_publisher import publish_model
from schemas.tables import EVENT_TABLES

SEED = int(os.environ.get("NEARLINE_FAULT_SEED", "8"))
EVENTS = 40_000
RATE = 800  # events/s: the stream lasts 50 s, and both restarts fall inside it
ITEMS = 200


def test_broker_restarts_lose_nothing_and_store_everything_once(
    private_stack: PrivateStack, tmp_path: Path
) -> None:
    started = time.monotonic()
    token = uuid.uuid4().hex[:10]
    deployment = Deployment(
        private_stack.bootstrap, token, tmp_path, NEARLINE_WORKER_SESSION_TIMEOUT_S="6"
    )
    schema = f"br_{token}"
    sink_group = f"{deployment.prefix}sink"
    sink = RoleProcess(
        ["sink"],
        {
            **deployment.env,
            "DATABASE_URL": private_stack.database_url,
            "NEARLINE_DB_SCHEMA": schema,
            "NEARLINE_SINK_GROUP_ID": sink_group,
            "NEARLINE_SINK_PROGRESS_INTERVAL_S": "5",
        },
        tmp_path / "sink.log",
    )
    try:
        precreate_changelogs(deployment)
        publish_model(deployment.kafka, deployment.catalogue, make_model(1, n_items=ITEMS))
        events = synthetic_events(SEED, EVENTS, 1_000, ITEMS)
        worker = deployment.worker()
        sink.start()
        producer = PacedProducer(deployment.kafka, deployment.catalogue, events, RATE).start()
        print(f"\n{EVENTS} events at {RATE}/s; producer, sink and worker running")

        faults = [("SIGTERM restart", restart_broker, 0.25), ("SIGKILL restart", kill_broker, 0.6)]
        progress = {"worker": 0, "sink": 0}  # events committed by each group before a fault
        for name, fault, at in faults:
            # The clock: events acknowledged. And before a fault, the stream has resumed
            # after the previous one (or started): the worker and the sink have each
            # committed more than they had before it. A role that stays stalled fails here,
            # named, rather than later as lag.
            deadline = time.monotonic() + 120
            while True:
                worker.check_alive()
                sink.check_alive()
                assert producer.error is None, f"the producer failed: {producer.error!r}"
                committed = {
                    "worker": committed_total(deployment),
                    "sink": committed_total(deployment, sink_group),
                }
                stalled = [r for r, n in committed.items() if n <= progress[r]]
                if producer.acknowledged() < at * EVENTS:
                    stalled.insert(0, "producer")
                if not stalled:
                    break
                assert time.monotonic() < deadline, (
                    f"stalled before the {name}: {', '.join(stalled)}; producer "
                    f"{producer.sent} sent, {producer.acknowledged()} acknowledged; "
                    f"committed {committed} (before the previous fault: {progress})"
                )
                time.sleep(1)
            progress = committed
            sent, acknowledged = producer.sent, producer.acknowledged()
            away = fault(private_stack)
            print(
                f"broker {name} at {sent} sent ({acknowledged} acknowledged; committed: "
                f"worker {committed['worker']}, sink {committed['sink']}): away {away:.1f} s"
            )

        producer.join()
        print(f"producer: {producer.sent} sent, {producer.acknowledged()} acknowledged, 0 failed")
        # librdkafka #5301 (see schemas.producer.BrokerWatch): clients orphaned by a restart
        # and replaced. Not a failure: the figures show how often the workaround acted.
        replaced = {
            "producer": producer.producer.replaced,
            "sink": sink.log.read_text(errors="replace").count("had lost every broker"),
            "worker": worker.log.read_text(errors="replace").count("had lost every broker"),
        }
        print(f"orphaned librdkafka clients replaced: {replaced}")
        drained = wait_for_no_lag(deployment, [worker])
        sink_lag = wait_for_no_lag(deployment, [sink], sink_group)
        print(f"lag 0: worker {drained:.0f} s, sink {sink_lag:.0f} s after the last event")

        log = read_log(deployment.kafka, deployment.catalogue)
        missing, twice, foreign = log_counts(log, events)
        engine = make_engine(private_stack.database_url, db_schema=schema)
        stored: Counter[str] = Counter()
        per_table = {}
        with engine.connect() as conn:
            for name, table in EVENT_TABLES.items():
                ids = [str(r[0]) for r in conn.execute(sa.select(table.c.event_id))]
                per_table[name] = len(ids)
                stored.update(ids)
        engine.dispose()
        produced = {e.event_id for e in events}
        not_stored = len(produced - set(stored))
        stored_twice = sum(n - 1 for n in stored.values() if n > 1)
        strangers = len(set(stored) - produced)
        comparison = Truth.of(log).compare(deployment.states())
        letters = dead_letters(deployment)
        assert sink.stop() == 0
        assert worker.stop() == 0
        print(f"log: {len(log)} events, {missing} missing, {twice} twice, {foreign} foreign")
        print(
            f"postgresql: {sum(stored.values())} rows {per_table}; {not_stored} missing, "
            f"{stored_twice} twice, {strangers} unknown"
        )
        print(f"worker state: {comparison.line()}; {letters} dead letters")
        print(f"duration {time.monotonic() - started:.0f} s")
        assert producer.acknowledged() == producer.sent == EVENTS
        assert (missing, twice, foreign) == (0, 0, 0)
        assert (not_stored, stored_twice, strangers) == (0, 0, 0)
        assert sum(stored.values()) == EVENTS
        assert comparison.exact, comparison.mismatches[:10]
        assert letters == 0
    finally:
        sink.kill()
        deployment.close()
