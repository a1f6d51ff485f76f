"""`nearline dev up && nearline dev status && nearline dev down` with a stack of its own
(own state folder and ports), leaving no process of ours behind; and `down --wipe`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import create_engine, text

from deploy.broker import BrokerPaths
from deploy.processes import ProcessRef, free_port
from deploy.settings import StackSettings

pytestmark = pytest.mark.integration


def nearline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def own_stack(state_dir: Path) -> tuple[dict[str, str], int, int]:
    """The environment of a stack in ``state_dir`` on free ports; its Kafka and PG ports."""
    kafka_port, controller_port, pg_port = free_port(), free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env.update(
        NEARLINE_STATE_DIR=str(state_dir),
        NEARLINE_KAFKA_PORT=str(kafka_port),
        NEARLINE_KAFKA_CONTROLLER_PORT=str(controller_port),
        NEARLINE_PG_PORT=str(pg_port),
    )
    return env, kafka_port, pg_port


def test_up_twice_status_env_down_leaves_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    env, kafka_port, pg_port = own_stack(state_dir)
    try:
        nearline("dev", "up", env=env)
        state = json.loads((state_dir / "state.json").read_text())
        refs = {
            name: ProcessRef(state[name]["pid"], state[name]["started"])
            for name in ("kafka", "postgres")
        }
        assert all(ref.alive() for ref in refs.values())

        again = nearline("dev", "up", env=env)  # harmless: nothing new starts
        assert "already running" in again.stderr
        assert (
            json.loads((state_dir / "state.json").read_text())["kafka"]["pid"] == refs["kafka"].pid
        )

        status = nearline("dev", "status", env=env).stdout
        assert f"127.0.0.1:{kafka_port}" in status and "Apache Kafka 3.9" in status
        assert f"127.0.0.1:{pg_port}" in status and "answering, PostgreSQL" in status

        exports = nearline("dev", "env", env=env).stdout.strip()
        assert exports.startswith(f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{kafka_port} ")
        assert "DATABASE_URL=postgresql+psycopg2://nearline:" in exports
        assert f"@127.0.0.1:{pg_port}/nearline" in exports
        check_env = {**env, **dict(kv.split("=", 1) for kv in exports[7:].split())}
        assert "cluster" in nearline("dev", "check", env=check_env).stdout
    finally:
        nearline("dev", "down", env=env)
        # As root the cluster may live outside the state folder (see cluster_root).
        pg_root = Path(json.loads((state_dir / "state.json").read_text())["postgres"]["root"])
        if pg_root.parent == Path("/var/lib/nearline"):
            shutil.rmtree(pg_root, ignore_errors=True)
    assert not any(ref.alive() for ref in refs.values())
    status = nearline("dev", "status", env=env).stdout
    assert "kafka      stopped" in status and "postgres   stopped" in status


def database_url(up: subprocess.CompletedProcess[str]) -> str:
    [line] = [line for line in up.stdout.splitlines() if line.startswith("DATABASE_URL=")]
    return line.removeprefix("DATABASE_URL=")


def test_down_wipe_starts_the_next_up_afresh_and_keeps_the_jars(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    env, kafka_port, _ = own_stack(state_dir)
    shared = BrokerPaths(StackSettings().state_dir / "kafka").jars  # skip a Maven run
    if (shared / ".complete").is_file():
        shutil.copytree(shared, BrokerPaths(state_dir / "kafka").jars)
    bootstrap = f"127.0.0.1:{kafka_port}"
    try:
        url = database_url(nearline("dev", "up", env=env))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("left-behind", 3, 1)])["left-behind"].result(30)
        engine = create_engine(url)
        with engine.begin() as db:
            db.execute(text("CREATE TABLE left_behind (id int)"))
        engine.dispose()

        wiped = nearline("dev", "down", "--wipe", env=env).stderr
        removed = re.search(
            r"kafka      data removed \((\d+) partition folders\); jars kept", wiped
        )
        assert removed and int(removed.group(1)) >= 3, wiped  # ours, and the metadata log
        assert "postgres   cluster removed" in wiped
        assert not BrokerPaths(state_dir / "kafka").data.exists()
        assert (BrokerPaths(state_dir / "kafka").jars / ".complete").is_file()

        again = nearline("dev", "up", env=env)
        assert "initialising a project-local cluster" in again.stderr
        assert "fetching" not in (again.stdout + again.stderr).lower()
        new_url = database_url(again)
        assert new_url != url  # a new cluster, with a new password
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
        assert "left-behind" not in topics
        engine = create_engine(new_url)
        with engine.connect() as db:
            assert db.execute(text("SELECT to_regclass('left_behind')")).scalar() is None
        engine.dispose()
    finally:
        nearline("dev", "down", "--wipe", env=env)
