"""Process bookkeeping for the dev stack: identity by (pid, start time), ports, stopping."""

from __future__ import annotations

import errno
import os
import random
import signal
import socket
import time
from dataclasses import dataclass


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait() is missing
        return None
    return int(fields[19])


@dataclass(frozen=True)
class ProcessRef:
    """A process we started, identified robustly against pid reuse."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        started = start_time(pid)
        if started is None:
            raise ProcessLookupError(pid)
        return cls(pid, started)

    def alive(self) -> bool:
        return start_time(self.pid) == self.started

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> bool:
        """Signal the process, wait for it to go, SIGKILL it after ``timeout``.

        Returns True if it had been running.
        """
        if not self.alive():
            return False
        self._signal(sig)
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
                deadline = time.monotonic() + 10
            _reap(self.pid)
            time.sleep(0.1)
        return True

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    # If we are the parent (tests start and stop the stack in one process), collect the
    # zombie so that it stops looking alive.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


# Ports we handed out in this process, so that three calls in a row give three ports even
# though none is bound yet.
_handed_out: set[int] = set()
_LOWEST = 10000  # below this are the registered services' ports
# The dev stack's default ports (deploy.settings, deploy.database): a test's server there
# would keep a developer's stopped stack from starting again.
_DEV_STACK = frozenset({19092, 19093, 15432})


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (and for ``bind`` to 0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            low, high = handle.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(preferred: int | None = None) -> int:
    """A port free on 127.0.0.1 now, for a server that binds it later.

    It lies outside the kernel's ephemeral range. A port from ``bind`` to 0 lies inside it,
    and until the server binds it, any outgoing connection on the machine may take it as its
    local port: CI saw a private stack's PostgreSQL refuse its port because a client of the
    broker started just before held it.
    """
    if preferred is not None and port_free(preferred):
        _handed_out.add(preferred)
        return preferred
    low, high = ephemeral_range()
    taken = _handed_out | _DEV_STACK
    pool = [p for p in range(_LOWEST, 65536) if not low <= p <= high and p not in taken]
    for port in random.sample(pool, min(len(pool), 200)):
        if port_free(port):
            _handed_out.add(port)
            return port
    # No room outside the ephemeral range (a machine whose range covers nearly every port),
    # or all we tried were taken: the kernel's choice, with the risk above.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _handed_out.add(port)
    return port


def tail(path: str | os.PathLike[str], lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""
