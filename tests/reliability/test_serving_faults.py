"""Issue #8, item 6: serving holds a steady load while the worker and the broker restart.

A ``nearline serve`` replica answers a steady 150 requests/s for top-10 recommendations
(2,000 users: some with nearline sets, a third of the requests with ``recent=`` items, the
rest cold) while events flow to the worker, and meanwhile: the worker is SIGKILLed and
restarted, the broker is restarted gracefully, then SIGKILLed and restarted. Every request
must get a 200 answer, from whichever source can give one. The error rate, the p50/p99
latency and the answering sources are printed per phase. Latency is reported, not asserted:
speed is for the benchmarks.

After the faults the replica must still follow the worker: fresh sets reach the answers.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fault_load import SteadyLoad
from fault_processes import RoleProcess, kill_broker, restart_broker
from fault_sets import NewSets
from fault_worker import committed_total, precreate_changelogs, wait_until_committed
from fault_workload import PacedProducer, synthetic_events
from private_stack import PrivateStack
from worker_harness import Deployment, make_model

from deploy.processes import free_port
from schemas.database import make_engine
from schemas.events import Context, ViewEvent
from schemas.metadata import upsert_items
from schemas.migrations import migrate
from schemas.model_publisher import publish_model

SEED = int(os.environ.get("NEARLINE_FAULT_SEED", "8"))
ITEMS = 200
RATE = 150  # requests/s offered
EVENT_RATE = 150  # events/s to the worker meanwhile


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def get(url: str, path: str) -> httpx.Response | None:
    try:
        return httpx.get(url + path, timeout=5)
    except httpx.HTTPError:
        return None


def test_every_request_is_answered_while_the_worker_and_the_broker_restart(
    private_stack: PrivateStack, tmp_path: Path
) -> None:
    started = time.monotonic()
    token = uuid.uuid4().hex[:10]
    deployment = Deployment(
        private_stack.bootstrap, token, tmp_path, NEARLINE_WORKER_SESSION_TIMEOUT_S="6"
    )
    schema = f"sv_{token}"
    engine = make_engine(private_stack.database_url, db_schema=schema)
    migrate(engine)
    upsert_items(
        engine,
        [
            {"item_id": f"i{n}", "title": f"Movie {n}", "year": 2000, "genres": ["Drama"]}
            for n in range(ITEMS)
        ],
    )
    engine.dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = RoleProcess(
        ["serve"],
        {
            **deployment.env,
            "DATABASE_URL": private_stack.database_url,
            "NEARLINE_DB_SCHEMA": schema,
            "NEARLINE_SERVING_PORT": str(port),
            "NEARLINE_SERVING_LOG_LEVEL": "warning",
        },
        tmp_path / "serve.log",
    )
    producer: PacedProducer | None = None
    load: SteadyLoad | None = None
    try:
        precreate_changelogs(deployment)
        publish_model(deployment.kafka, deployment.catalogue, make_model(1, n_items=ITEMS))
        worker = deployment.worker()
        server.start()
        wait_for(lambda: (r := get(url, "/ready")) is not None and r.status_code == 200, "ready")
        wait_for(
            lambda: (r := get(url, "/v1/models/current")) and r.json()["version"] == 1, "model"
        )
        events = synthetic_events(SEED, 40_000, 1_000, ITEMS)
        producer = PacedProducer(deployment.kafka, deployment.catalogue, events, EVENT_RATE)
        producer.start()
        wait_until_committed(deployment, worker, 1)
        users = [f"u{n}" for n in range(2_000)]  # u1000... never act: cold starts
        items = [f"i{n}" for n in range(ITEMS)]
        load = SteadyLoad(url, rate=RATE, threads=16, users=users, items=items, seed=SEED)
        load.start()
        time.sleep(8)  # a steady phase to compare the faults with, not a synchronisation

        load.mark("worker SIGKILL")
        worker.kill()
        worker = deployment.worker()
        back = wait_until_committed(deployment, worker, committed_total(deployment) + 1)
        print(f"\nworker SIGKILLed and restarted; committing again ({back} events)")

        load.mark("broker SIGTERM restart")
        away = restart_broker(private_stack)
        wait_until_committed(deployment, worker, committed_total(deployment) + 1)
        print(f"broker restarted gracefully: away {away:.1f} s")

        load.mark("broker SIGKILL restart")
        away = kill_broker(private_stack)
        wait_until_committed(deployment, worker, committed_total(deployment) + 1)
        print(f"broker SIGKILLed and restarted: away {away:.1f} s")

        # The replica still follows the worker: a fresh view of five users each yields a
        # set, and the answers for those users become exactly those sets.
        load.mark("after the faults")
        sets = NewSets(deployment.kafka, deployment.catalogue)
        probes = [  # users the producer never uses, so that no later set replaces these
            ViewEvent(f"u{n}", "i7", 60_000, 0.9, Context("probe", "tv")) for n in range(1995, 2000)
        ]
        deployment.send(probes)
        fresh = sets.wait_for_triggers({p.event_id for p in probes}, [worker])
        sets.close()
        for probe in probes:
            want = [i.item_id for i in [s for s in fresh if s.user_id == probe.user_id][-1].items]

            def served(user: str = probe.user_id, want: list[str] = want) -> bool:
                return served_items(url, user) == want[:10]

            wait_for(served, f"the fresh set of {probe.user_id}", timeout=30)
        load.stop()
        producer.stop()
        producer.join()
        worker.check_alive()
        server.check_alive()

        failed = load.failed()
        print(f"load: {RATE} requests/s offered for {load.marks[-1][0] - load.started_at:.0f} s")
        print(load.summary())
        print(f"failed requests: {len(failed)}; duration {time.monotonic() - started:.0f} s")
        assert not failed, failed[:5]
        assert len(load.outcomes) > RATE * 20
    finally:
        if load is not None:
            load.stop()
        if producer is not None:
            producer.stop()
        server.kill()
        deployment.close()


def served_items(url: str, user: str) -> list[str]:
    response = get(url, f"/v1/users/{user}/recommendations?k=10")
    if response is None or response.status_code != 200:
        return []
    body = response.json()
    if body["source"] != "nearline":
        return []
    return [i["item_id"] for i in body["items"] if i["source"] == "nearline"]
