"""The dev stack's pieces that need no running service: settings, config rendering, the
state record, process identity, and the one-line errors of the `nearline` command."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import broker, processes
from deploy.processes import ProcessRef, ephemeral_range, free_port, port_free, start_time
from deploy.settings import StackSettings
from deploy.state import StackState
from schemas.errors import ConfigError, StackError
from schemas.settings import DatabaseSettings, KafkaSettings, load, normalise_database_url

NEARLINE = [sys.executable, "-m", "deploy.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    full_env.update(env or {})
    return subprocess.run(
        [*NEARLINE, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("nearline: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_rendered_kafka_config_listens_on_loopback_only(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, kafka_port=29092, kafka_controller_port=29093)
    paths = broker.BrokerPaths(tmp_path / "kafka")
    paths.root.mkdir()
    broker.write_config(paths, settings)
    config = dict(
        line.split("=", 1)
        for line in paths.config.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert config["log.dirs"] == str(paths.data)
    assert config["process.roles"] == "broker,controller"
    assert "$" not in paths.config.read_text()


def test_cluster_id_is_a_base64_uuid() -> None:
    import base64

    assert len(base64.urlsafe_b64decode(broker.CLUSTER_ID + "==")) == 16


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEARLINE_KAFKA_PORT", "99999")
    with pytest.raises(ConfigError, match="NEARLINE_KAFKA_PORT: .*65535"):
        load(StackSettings)
    monkeypatch.setenv("NEARLINE_KAFKA_PORT", "19093")
    with pytest.raises(ConfigError, match="must differ"):
        load(StackSettings)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost")
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS: .*host:port"):
        load(KafkaSettings)


def test_kafka_client_config_passes_sasl_through() -> None:
    config = KafkaSettings(
        bootstrap_servers="a:1, b:2",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",  # type: ignore[arg-type]
    ).client_config()
    assert config == {
        "bootstrap.servers": "a:1,b:2",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
    }


def test_database_url_is_normalised_to_our_driver() -> None:
    assert normalise_database_url("postgres://u:p@h:1/d") == "postgresql+psycopg2://u:p@h:1/d"
    assert normalise_database_url("postgresql://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert normalise_database_url("postgresql+psycopg2://h/d") == "postgresql+psycopg2://h/d"
    with pytest.raises(ConfigError, match="mysql"):
        normalise_database_url("mysql://h/d")
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        DatabaseSettings(DATABASE_URL=None).url()  # type: ignore[call-arg]


def test_state_file_is_private_and_round_trips(tmp_path: Path) -> None:
    store = StackState(tmp_path / "state")
    assert store.load() == {}
    with store.locked():
        store.save({"postgres": {"password": "secret", "port": 1}})
    assert store.load() == {"postgres": {"password": "secret", "port": 1}}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_process_ref_stops_only_the_process_it_started() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ref = ProcessRef.of(proc.pid)
    assert ref.alive()
    impostor = ProcessRef(proc.pid, ref.started + 1)  # same pid, another start: a reused pid
    assert not impostor.alive()
    assert impostor.stop() is False
    assert proc.poll() is None
    assert ref.stop(timeout=10) is True
    assert proc.wait(timeout=5) is not None
    assert start_time(proc.pid) is None


def test_port_checks_see_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not port_free(taken)
        assert free_port(preferred=taken) != taken


def test_free_ports_lie_outside_the_ephemeral_range_and_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Inside the range, an outgoing connection could take the port before the server binds
    # it (a private stack's PostgreSQL once found its port held by a broker client).
    low, high = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert all(not low <= port <= high and port >= 10000 for port in ports)
    assert all(port_free(port) for port in ports)
    assert not {19092, 19093, 15432} & set(ports)  # the dev stack's defaults
    # None is bound yet, yet each call gives another, even when the draws are the same.
    monkeypatch.setattr(processes.random, "sample", lambda pool, k: sorted(pool)[:k])
    again = [free_port() for _ in range(5)]
    assert len(set(again)) == 5


def test_unreachable_broker_is_one_clear_line() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    line = one_clear_line(
        run_cli("dev", "check", env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{dead}"})
    )
    assert f"no Kafka broker answered at 127.0.0.1:{dead}" in line


def test_bad_setting_is_one_clear_line() -> None:
    line = one_clear_line(run_cli("dev", "status", env={"NEARLINE_KAFKA_PORT": "http"}))
    assert "NEARLINE_KAFKA_PORT" in line


def test_wrong_database_url_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    line = one_clear_line(
        run_cli(
            "dev",
            "up",
            env={
                "NEARLINE_STATE_DIR": str(tmp_path),
                "DATABASE_URL": f"postgresql://nearline:wrong@127.0.0.1:{dead}/nearline",
            },
        )
    )
    assert "cannot connect to PostgreSQL" in line and "wrong" not in line  # password hidden
    assert not (tmp_path / "kafka").exists(), "a bad DATABASE_URL must not start a broker"


def test_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        line = one_clear_line(
            run_cli(
                "dev",
                "up",
                env={
                    "NEARLINE_STATE_DIR": str(tmp_path),
                    "NEARLINE_KAFKA_PORT": str(taken),
                    "NEARLINE_KAFKA_CONTROLLER_PORT": str(free_port()),
                },
            )
        )
    assert f"port {taken}" in line and "NEARLINE_KAFKA_PORT" in line


def test_unreachable_maven_is_one_clear_line(tmp_path: Path) -> None:
    # A Maven whose only repository is a dead local port and whose local cache is empty
    # behaves exactly like a machine that cannot reach Maven Central.
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>dead</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/</url></mirror></mirrors></settings>"
    )
    line = one_clear_line(
        run_cli(
            "dev",
            "up",
            env={
                "NEARLINE_STATE_DIR": str(tmp_path / "state"),
                "NEARLINE_KAFKA_PORT": str(free_port()),
                "NEARLINE_KAFKA_CONTROLLER_PORT": str(free_port()),
                "MAVEN_OPTS": f"-Duser.home={home} -Dmaven.repo.local={tmp_path / 'repo'}",
            },
        )
    )
    assert "Maven could not fetch the Kafka jars" in line


def test_a_slow_start_with_thousands_of_partitions_says_how_to_start_afresh(
    tmp_path: Path,
) -> None:
    from deploy.broker import _many_partitions_hint

    data = tmp_path / "data"
    for n in range(999):
        (data / f"t{n // 3}-{n % 3}").mkdir(parents=True)
    (data / "meta.properties").write_text("")
    assert _many_partitions_hint(data) == ""
    (data / "__cluster_metadata-0").mkdir()
    hint = _many_partitions_hint(data)
    assert "1000 partition folders" in hint and "nearline dev down --wipe" in hint
    assert "NEARLINE_STARTUP_TIMEOUT_S" in hint
    assert _many_partitions_hint(tmp_path / "absent") == ""


def test_wipe_refuses_while_a_broker_it_did_not_record_holds_the_port(tmp_path: Path) -> None:
    from deploy import stack
    from deploy.broker import BrokerPaths

    data = BrokerPaths(tmp_path / "kafka").data
    (data / "orders-0").mkdir(parents=True)
    with socket.socket() as sock:  # a broker interrupted during `up`: running, unrecorded
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        settings = StackSettings(
            state_dir=tmp_path,
            kafka_port=sock.getsockname()[1],
            kafka_controller_port=free_port(),
            pg_port=free_port(),
        )
        with pytest.raises(StackError, match="not wiping .* port .* is in use"):
            stack.down(settings, services=("kafka",), wipe=True, log=lambda line: None)
    assert (data / "orders-0").is_dir()
    lines: list[str] = []
    stack.down(settings, services=("kafka",), wipe=True, log=lines.append)
    assert not data.exists() and "data removed (1 partition folders)" in " ".join(lines)


def test_wipe_refuses_while_postgres_runs_on_the_cluster(tmp_path: Path) -> None:
    from deploy import stack
    from deploy.database import PgPaths, server_pid

    paths = PgPaths(tmp_path / "pg")
    paths.data.mkdir(parents=True)
    fake = tmp_path / "postgres"  # a process whose name is postgres
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "60"])
    try:
        (paths.data / "postmaster.pid").write_text(f"{proc.pid}\n{paths.data}\n")
        StackState(tmp_path).save({"postgres": {"root": str(paths.root), "password": "x"}})
        settings = StackSettings(state_dir=tmp_path, kafka_port=free_port(), pg_port=free_port())
        assert server_pid(paths) == proc.pid
        with pytest.raises(StackError, match=f"PostgreSQL \\(pid {proc.pid}\\) still runs"):
            stack.down(settings, services=("postgres",), wipe=True, log=lambda line: None)
        assert paths.data.is_dir() and "postgres" in StackState(tmp_path).load()
    finally:
        proc.kill()
        proc.wait()
    assert server_pid(paths) is None  # a stale postmaster.pid, as after a crash
    stack.down(settings, services=("postgres",), wipe=True, log=lambda line: None)
    assert not paths.root.exists() and "postgres" not in StackState(tmp_path).load()
