"""Step 4 of the demo: the worker and the server as child processes, ready to answer.

Both get the run's environment: its broker and database, topic prefix and schema, a free
port for the server and a data folder for the worker. They are registered for stopping
before they start, so that nothing can be left behind.

Example::

    roles = start_roles(settings, services, names, plan, run_dir, cleanup, say)
    roles.port, [check() for check in roles.checks]
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from deploy.demo import namespace
from deploy.demo.children import Child, inherit, nearline_command, stop_all
from deploy.demo.http_probe import ServerClient
from deploy.demo.plan import Plan
from deploy.demo.readiness import wait_for_server, wait_for_worker
from deploy.demo.services import Services
from deploy.demo.settings import DemoSettings
from deploy.demo.stopping import defer
from deploy.processes import free_port
from schemas.catalogue import Catalogue

Say = Callable[[str], None]


@dataclass(frozen=True)
class RoleProcesses:
    worker: Child
    server: Child
    port: int

    @property
    def checks(self) -> list[Callable[[], None]]:
        return [self.worker.check, self.server.check]


def start_roles(
    settings: DemoSettings,
    services: Services,
    names: namespace.RunNames,
    plan: Plan,
    run_dir: Path,
    cleanup: ExitStack,
    say: Say,
) -> RoleProcesses:
    port = free_port()
    env = inherit(
        {
            "KAFKA_BOOTSTRAP_SERVERS": services.kafka.bootstrap_servers,
            "DATABASE_URL": services.database_url,
            "NEARLINE_TOPIC_PREFIX": names.prefix,
            "NEARLINE_DB_SCHEMA": names.schema,
            "NEARLINE_WORKER_APP_ID": namespace.WORKER_APP_ID,
            "NEARLINE_WORKER_DATADIR": str(run_dir / "worker"),
            "NEARLINE_SERVING_HOST": "127.0.0.1",
            "NEARLINE_SERVING_PORT": str(port),
            "NEARLINE_SERVING_WORKERS": "1",
            "NEARLINE_SERVING_LOG_LEVEL": "warning",
        }
    )
    roles = RoleProcesses(
        Child("worker", nearline_command("worker"), env, run_dir / "worker.log"),
        Child("server", nearline_command("serve"), env, run_dir / "server.log"),
        port,
    )
    defer(cleanup, say, _stop, roles, say)
    roles.worker.start()
    roles.server.start()
    say(
        f"      worker pid {roles.worker.pid}, server pid {roles.server.pid} "
        f"on http://127.0.0.1:{port}"
    )
    _wait_ready(settings, services, Catalogue(names.prefix), plan, roles)
    return roles


def _wait_ready(
    settings: DemoSettings,
    services: Services,
    catalogue: Catalogue,
    plan: Plan,
    roles: RoleProcesses,
) -> None:
    deadline = time.monotonic() + settings.startup_timeout_s
    with tqdm(total=2, desc="server and worker ready", unit="") as bar:
        client = ServerClient(roles.port)
        try:
            wait_for_server(client, roles.server, deadline)
        finally:
            client.close()
        bar.update()
        last = plan.history.iloc[-1]
        wait_for_worker(
            services.kafka,
            catalogue,
            roles.worker,
            deadline,
            probe_item=str(last["item_id"]),
            probe_ts_ms=int(last["ts"]) * 1000,
        )
        bar.update()


def exit_text(code: int | None) -> str:
    """How a child ended: ``exit 0``, ``SIGTERM`` (uvicorn re-raises the signal it
    handled, so a clean stop can look like that) or ``not started``."""
    if code is None:
        return "not started"
    return f"exit {code}" if code >= 0 else signal.Signals(-code).name


def _stop(roles: RoleProcesses, say: Say) -> None:
    codes = stop_all([roles.worker, roles.server])
    say("stopped " + ", ".join(f"the {name} ({exit_text(c)})" for name, c in codes.items()))
