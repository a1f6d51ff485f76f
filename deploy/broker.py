"""A real Apache Kafka broker (KRaft, one node) run from the jars Maven fetches.

The jars are copied once into ``<state>/kafka/jars`` by ``mvn dependency:copy-dependencies``;
a marker file records which pom they came from, so editing the pom refetches them.
"""

from __future__ import annotations

import hashlib
import shutil
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.processes import ProcessRef, port_free, tail
from deploy.settings import StackSettings
from schemas.connectivity import broker_metadata
from schemas.errors import BrokerUnavailable, StackError

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
# Base64 of the 16 bytes "nearline-dev-001": KRaft wants a fixed, UUID-sized cluster id so
# that re-formatting an existing log dir is recognised and skipped.
CLUSTER_ID = "bmVhcmxpbmUtZGV2LTAwMQ"


@dataclass(frozen=True)
class BrokerPaths:
    root: Path

    @property
    def jars(self) -> Path:
        return self.root / "jars"

    @property
    def marker(self) -> Path:
        return self.jars / ".complete"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"


def _pom_digest() -> str:
    return hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()


def kafka_version(paths: BrokerPaths) -> str | None:
    """The broker version of the cached jars (from ``kafka_2.13-X.Y.Z.jar``)."""
    for jar in sorted(paths.jars.glob("kafka_2.13-*.jar")):
        return jar.stem.removeprefix("kafka_2.13-")
    return None


def fetch_jars(paths: BrokerPaths) -> str:
    """Copy the broker's runtime jars from Maven once; return the Kafka version."""
    digest = _pom_digest()
    if paths.marker.is_file() and paths.marker.read_text().strip() == digest:
        return kafka_version(paths) or "unknown"
    for tool, package in (("mvn", "maven"), ("java", "openjdk-17-jre-headless")):
        if shutil.which(tool) is None:
            raise StackError(f"`{tool}` is not installed; install it (apt-get install {package})")
    if paths.jars.exists():
        shutil.rmtree(paths.jars)
    paths.jars.mkdir(parents=True)
    print("nearline: fetching the Apache Kafka jars with Maven (once)...", flush=True)
    result = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(KAFKA_DIR / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={paths.jars}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "ERROR" in ln]
        first = lines[0].replace("[ERROR]", "").strip() if lines else f"exit {result.returncode}"
        raise StackError(
            f"Maven could not fetch the Kafka jars ({first[:200]}); check that the Maven "
            "repository is reachable (proxy settings go in ~/.m2/settings.xml) and run again"
        )
    paths.marker.write_text(digest + "\n")
    return kafka_version(paths) or "unknown"


def write_config(paths: BrokerPaths, settings: StackSettings) -> None:
    template = string.Template((KAFKA_DIR / "server.properties").read_text())
    paths.config.write_text(
        template.substitute(
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            log_dir=paths.data,
        )
    )


def _java(paths: BrokerPaths, heap: str, *args: str) -> list[str]:
    return [
        "java",
        f"-Xmx{heap}",
        f"-Xms{heap}",
        f"-Dlog4j.configuration=file:{KAFKA_DIR / 'log4j.properties'}",
        f"-Dkafka.logs.dir={paths.logs}",
        "-cp",
        f"{paths.jars}/*",
        *args,
    ]


def format_storage(paths: BrokerPaths) -> None:
    result = subprocess.run(
        _java(
            paths,
            "256m",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            CLUSTER_ID,
            "-c",
            str(paths.config),
            "--ignore-formatted",
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka storage failed: {(result.stdout + result.stderr)[-400:]}"
        )


def check_ports(settings: StackSettings) -> None:
    """Fail early, before any download, if another process holds one of our ports."""
    for port, name in (
        (settings.kafka_port, "NEARLINE_KAFKA_PORT"),
        (settings.kafka_controller_port, "NEARLINE_KAFKA_CONTROLLER_PORT"),
    ):
        if not port_free(port):
            raise StackError(
                f"port {port} on 127.0.0.1 is already in use by another process; stop it "
                f"or set {name} to a free port"
            )


def start(paths: BrokerPaths, settings: StackSettings) -> ProcessRef:
    """Start the broker in its own session and wait until a client sees it."""
    check_ports(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    write_config(paths, settings)
    format_storage(paths)
    console = paths.logs / "console.log"
    with open(console, "ab") as out:
        # start_new_session: the broker outlives `nearline dev up` and is not hit by a
        # Ctrl-C aimed at the terminal that started it; `down` stops it by its pid.
        proc = subprocess.Popen(
            _java(paths, settings.kafka_heap, "kafka.Kafka", str(paths.config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    ref = ProcessRef.of(proc.pid)
    wait_ready(ref, settings, paths)
    return ref


def wait_ready(ref: ProcessRef, settings: StackSettings, paths: BrokerPaths) -> None:
    console = paths.logs / "console.log"
    deadline = time.monotonic() + settings.startup_timeout_s
    config = {"bootstrap.servers": settings.kafka_bootstrap}
    while True:
        if not ref.alive():
            raise StackError(
                f"the Kafka broker exited during start-up; its last lines ({console}):\n"
                + tail(console, 15)
            )
        try:
            broker_metadata(config, timeout=2)
            return
        except BrokerUnavailable:
            if time.monotonic() > deadline:
                ref.stop()
                raise StackError(
                    f"the Kafka broker did not answer on {settings.kafka_bootstrap} within "
                    f"{settings.startup_timeout_s:g} s; see {paths_hint(console)}"
                    + _many_partitions_hint(paths.data)
                ) from None
            time.sleep(0.5)


def partition_folders(data: Path) -> int:
    """How many partition logs (``topic-N``, live or set aside) the data folder holds."""
    return sum(1 for _ in data.glob("*-[0-9]*")) if data.is_dir() else 0


def _many_partitions_hint(data: Path, many: int = 1000) -> str:
    """A broker loads every partition before it answers: with thousands (topics that tests
    and benchmarks left behind), that takes minutes."""
    partitions = partition_folders(data)
    if partitions < many:
        return ""
    return (
        f". It holds {partitions} partition folders, which it loads before it answers: "
        "raise NEARLINE_STARTUP_TIMEOUT_S, or start afresh with `nearline dev down --wipe` "
        "(this deletes every topic)"
    )


def paths_hint(console: Path) -> str:
    return f"{console} and {console.parent / 'server.log'}"
