"""`nearline dev up && nearline dev status && nearline dev down` with a stack of its own
(own state folder and ports), leaving no process of ours behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.processes import ProcessRef, free_port

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


def test_up_twice_status_env_down_leaves_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
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
