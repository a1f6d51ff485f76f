"""A project-local PostgreSQL cluster from Debian's ``postgresql`` package.

PostgreSQL refuses to run as root, so when we are root every server command runs as the
``postgres`` user (``runuser``), and the cluster's folder belongs to that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.processes import ProcessRef, free_port, port_free, tail
from schemas.errors import StackError

PREFERRED_PORT = 15432
USER = "nearline"
DATABASE = "nearline"


@dataclass(frozen=True)
class PgPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"


def bindir() -> Path:
    """The newest installed PostgreSQL server's bin folder."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", p.parts[-3]) or 0),
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise StackError(
        "the PostgreSQL server is not installed; install it (apt-get install postgresql) "
        "or set DATABASE_URL to an existing database"
    )


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError(
            "running as root, but there is no `postgres` user to run PostgreSQL as "
            "(PostgreSQL refuses root); install Debian's postgresql package, which creates it"
        ) from None
    return ["runuser", "-u", "postgres", "--", *cmd]


def cluster_root(state_dir: Path) -> Path:
    """Where the cluster lives: under the state folder, if the server's user can reach it.

    As root, the server runs as ``postgres``, which cannot enter a folder under a private
    home or ``/tmp/pytest-of-root`` (mode 0700). Then the cluster goes to a folder of its own
    under /var/lib/nearline, named after the state folder so that two checkouts never share.
    """
    preferred = state_dir / "postgres"
    if os.geteuid() != 0:
        return preferred
    state_dir.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(_as_server_user(["test", "-x", str(state_dir)]), check=False)
    if probe.returncode == 0:
        return preferred
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    fallback = Path("/var/lib/nearline") / f"postgres-{digest}"
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.parent.chmod(0o755)
    return fallback


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for root, dirs, files in os.walk(path):
            for name in [
                root,
                *(os.path.join(root, d) for d in dirs),
                *(os.path.join(root, f) for f in files),
            ]:
                os.chown(name, entry.pw_uid, entry.pw_gid)


def initialise(paths: PgPaths) -> str:
    """Create the cluster once; return the password of its ``nearline`` superuser."""
    password = secrets.token_urlsafe(18)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.sockets.mkdir(exist_ok=True)
    pwfile = paths.root / "pwfile"
    pwfile.write_text(password + "\n")
    _chown_to_server_user(paths.root)
    try:
        result = subprocess.run(
            _as_server_user(
                [
                    str(bindir() / "initdb"),
                    "-D",
                    str(paths.data),
                    "-U",
                    USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise StackError(f"initdb failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return password


def start(paths: PgPaths, port: int, timeout: float) -> ProcessRef:
    if not port_free(port):
        raise StackError(
            f"port {port} on 127.0.0.1 is already in use by another process; stop it or set "
            "NEARLINE_PG_PORT to a free port"
        )
    options = (
        f"-c port={port} -c listen_addresses=127.0.0.1 "
        f"-c unix_socket_directories={paths.sockets} -c max_connections=200"
    )
    result = subprocess.run(
        _as_server_user(
            [
                str(bindir() / "pg_ctl"),
                "-D",
                str(paths.data),
                "-l",
                str(paths.log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    if result.returncode != 0:
        raise StackError(
            f"PostgreSQL did not start (pg_ctl exit {result.returncode}); its log "
            f"({paths.log}):\n{tail(paths.log, 10)}"
        )
    pid = int((paths.data / "postmaster.pid").read_text().split()[0])
    return ProcessRef.of(pid)


def server_pid(paths: PgPaths) -> int | None:
    """The pid of a PostgreSQL server running on this cluster, recorded or not; None if none.

    ``postmaster.pid`` outlives a crash, so its pid counts only if a ``postgres`` process
    has it now.
    """
    try:
        pid = int((paths.data / "postmaster.pid").read_text().split()[0])
        command = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if command.startswith("postgres") else None


def create_database(url_without_db: str, timeout: float) -> None:
    """Create the ``nearline`` database if it does not exist yet."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = psycopg2.connect(url_without_db + "/postgres", connect_timeout=3)
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{DATABASE}"')
    finally:
        conn.close()


def choose_port(configured: int | None, recorded: int | None) -> int:
    if configured is not None:
        return configured
    if recorded is not None and port_free(recorded):
        return recorded
    return free_port(PREFERRED_PORT)
