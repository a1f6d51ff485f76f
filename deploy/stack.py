"""`nearline dev up | down | status | env`: the local Kafka and PostgreSQL, started by us.

Example::

    >>> from deploy.settings import StackSettings
    >>> from deploy.stack import up, down
    >>> endpoints = up(StackSettings())           # doctest: +SKIP
    >>> endpoints.kafka_bootstrap                 # doctest: +SKIP
    '127.0.0.1:19092'
    >>> down(StackSettings())                     # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy import broker, database
from deploy.broker import BrokerPaths
from deploy.database import PgPaths
from deploy.processes import ProcessRef, port_free
from deploy.settings import StackSettings
from deploy.state import StackState
from schemas.connectivity import broker_metadata, database_version
from schemas.errors import BrokerUnavailable, DatabaseUnavailable, StackError

Log = Callable[[str], None]


@dataclass
class Endpoints:
    """Where the stack's services answer, and which of them this call started."""

    kafka_bootstrap: str | None = None
    database_url: str | None = None
    started: list[str] = field(default_factory=list)


def _ref(record: dict[str, Any] | None) -> ProcessRef | None:
    if not record or "pid" not in record:
        return None
    return ProcessRef(int(record["pid"]), int(record["started"]))


def _kafka_up(settings: StackSettings, state: dict[str, Any], log: Log) -> bool:
    paths = BrokerPaths(settings.state_dir / "kafka")
    ref = _ref(state.get("kafka"))
    if ref is not None and ref.alive():
        broker.wait_ready(ref, settings, paths)
        log(f"kafka      already running (pid {ref.pid}) on {settings.kafka_bootstrap}")
        return False
    broker.check_ports(settings)
    version = broker.fetch_jars(paths)
    log(f"kafka      starting Apache Kafka {version} (KRaft) on {settings.kafka_bootstrap}...")
    ref = broker.start(paths, settings)
    state["kafka"] = {
        "pid": ref.pid,
        "started": ref.started,
        "version": version,
        "bootstrap": settings.kafka_bootstrap,
    }
    log(f"kafka      ready (pid {ref.pid})")
    return True


def _postgres_up(settings: StackSettings, state: dict[str, Any], log: Log) -> bool:
    record = state.get("postgres") or {}
    paths = PgPaths(Path(record.get("root") or database.cluster_root(settings.state_dir)))
    ref = _ref(record)
    if ref is not None and ref.alive():
        log(f"postgres   already running (pid {ref.pid}) on 127.0.0.1:{record['port']}")
        return False
    if not (paths.data / "PG_VERSION").is_file():
        log("postgres   initialising a project-local cluster...")
        record = {"password": database.initialise(paths)}
    elif "password" not in record:
        raise StackError(
            f"{paths.data} exists but its password was not recorded; remove {paths.root} "
            "and run `nearline dev up` again"
        )
    port = database.choose_port(settings.pg_port, record.get("port"))
    ref = database.start(paths, port, settings.startup_timeout_s)
    server = f"{database.USER}:{record['password']}@127.0.0.1:{port}"
    database.create_database(f"postgresql://{server}", settings.startup_timeout_s)
    record.update(
        pid=ref.pid,
        started=ref.started,
        port=port,
        root=str(paths.root),
        url=f"postgresql+psycopg2://{server}/{database.DATABASE}",
    )
    state["postgres"] = record
    log(f"postgres   ready (pid {ref.pid}) on 127.0.0.1:{port}")
    return True


def up(
    settings: StackSettings, *, kafka: bool = True, postgres: bool = True, log: Log = print
) -> Endpoints:
    """Start what is not running yet; a second call changes nothing."""
    store = StackState(settings.state_dir)
    endpoints = Endpoints()
    with store.locked():
        state = store.load()
        try:
            if kafka:
                if _kafka_up(settings, state, log):
                    endpoints.started.append("kafka")
                endpoints.kafka_bootstrap = settings.kafka_bootstrap
            if postgres:
                if _postgres_up(settings, state, log):
                    endpoints.started.append("postgres")
                endpoints.database_url = state["postgres"]["url"]
        finally:
            store.save(state)  # record whatever did start, even if a later step failed
    return endpoints


def down(
    settings: StackSettings,
    *,
    services: tuple[str, ...] = ("kafka", "postgres"),
    wipe: bool = False,
    log: Log = print,
) -> list[str]:
    """Stop exactly the processes that `up` recorded; return the names stopped.

    ``wipe`` then deletes the services' data (every topic; the PostgreSQL cluster and its
    password), so that the next `up` starts afresh. The broker's jars are kept.
    """
    store = StackState(settings.state_dir)
    stopped = []
    with store.locked():
        state = store.load()
        # Kafka first: a graceful broker shutdown needs nothing from PostgreSQL, but clients
        # of both should see the broker go before the database.
        for name, sig in (("kafka", signal.SIGTERM), ("postgres", signal.SIGINT)):
            ref = _ref(state.get(name))
            if ref is None or name not in services:
                continue
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
            if ref.stop(sig, timeout=60):
                stopped.append(name)
                log(f"{name:<10} stopped (pid {ref.pid})")
            for key in ("pid", "started"):
                state[name].pop(key, None)
        try:
            if wipe:
                _wipe(settings, state, services, log)
        finally:
            store.save(state)
    if not stopped:
        log("nothing of ours was running")
    return stopped


def _wipe(
    settings: StackSettings, state: dict[str, Any], services: tuple[str, ...], log: Log
) -> None:
    """Delete the stopped services' data (see :func:`down`), unless something still runs on
    it: a broker or server that `up` did not record (one interrupted during its start-up
    outlives the Ctrl-C) would go on with its files deleted under it."""
    data = BrokerPaths(settings.state_dir / "kafka").data
    record = state.get("postgres") or {}
    root = Path(record.get("root") or database.cluster_root(settings.state_dir))
    if "kafka" in services and data.exists():
        for port in (settings.kafka_port, settings.kafka_controller_port):
            if not port_free(port):
                raise StackError(
                    f"not wiping {data}: port {port} is in use, perhaps by a broker that "
                    "`nearline dev up` started but did not record (interrupted during its "
                    "start-up); stop it first"
                )
    if "postgres" in services:
        pid = database.server_pid(PgPaths(root))
        if pid is not None:
            raise StackError(
                f"not wiping {root}: PostgreSQL (pid {pid}) still runs on it; stop it first"
            )
    if "kafka" in services and data.exists():
        partitions = broker.partition_folders(data)
        shutil.rmtree(data)
        log(f"kafka      data removed ({partitions} partition folders); jars kept")
    if "postgres" in services:
        if root.exists():
            shutil.rmtree(root)
            log(f"postgres   cluster removed ({root})")
        state.pop("postgres", None)


def status(settings: StackSettings) -> list[str]:
    """One line per service: running or not, where, and the Kafka version."""
    state = StackState(settings.state_dir).load()
    lines = []
    kafka_rec = state.get("kafka") or {}
    ref = _ref(kafka_rec)
    version = broker.kafka_version(BrokerPaths(settings.state_dir / "kafka")) or "not fetched"
    if ref is not None and ref.alive():
        try:
            info = broker_metadata({"bootstrap.servers": kafka_rec["bootstrap"]}, timeout=3)
            health = f"answering, cluster {info.cluster_id}, {info.topics} topics"
        except BrokerUnavailable:
            health = "NOT answering"
        lines.append(
            f"kafka      running  pid {ref.pid}  {kafka_rec['bootstrap']}  "
            f"Apache Kafka {kafka_rec.get('version', version)}  {health}"
        )
    else:
        lines.append(f"kafka      stopped  (jars: Apache Kafka {version})")
    pg_rec = state.get("postgres") or {}
    ref = _ref(pg_rec)
    if ref is not None and ref.alive():
        try:
            health = f"answering, PostgreSQL {database_version(pg_rec['url'], timeout=3)}"
        except DatabaseUnavailable:
            health = "NOT answering"
        lines.append(f"postgres   running  pid {ref.pid}  127.0.0.1:{pg_rec['port']}  {health}")
    else:
        lines.append("postgres   stopped")
    lines.append(f"state      {settings.state_dir}")
    return lines


def env_exports(settings: StackSettings, external_database_url: str | None = None) -> str:
    """``export ...`` for the running stack, ready for ``eval``."""
    state = StackState(settings.state_dir).load()
    kafka_ref = _ref(state.get("kafka"))
    if kafka_ref is None or not kafka_ref.alive():
        raise StackError("the dev stack is not running; start it with `nearline dev up`")
    parts = [f"KAFKA_BOOTSTRAP_SERVERS={state['kafka']['bootstrap']}"]
    pg_ref = _ref(state.get("postgres"))
    if pg_ref is not None and pg_ref.alive():
        parts.append(f"DATABASE_URL={state['postgres']['url']}")
    elif external_database_url:
        parts.append(f"DATABASE_URL={external_database_url}")
    return "export " + " ".join(parts)
