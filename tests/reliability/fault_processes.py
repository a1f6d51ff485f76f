"""The other processes a fault test starts or breaks: the sink and the serving replica as
subprocesses (the way ``nearline sink`` and ``nearline serve`` run), and the private broker
killed hard.

Example::

    sink = RoleProcess(["sink"], env, tmp / "sink.log").start()
    seconds = kill_broker(private_stack)      # SIGKILL, then started again
    sink.stop()                               # SIGTERM: finishes its batch, exits 0
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from private_stack import PrivateStack

from deploy.processes import ProcessRef, port_free
from deploy.state import StackState

NEARLINE = str(Path(sys.executable).parent / "nearline")


class RoleProcess:
    """``nearline <args>`` in a subprocess with its own environment and log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RoleProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [NEARLINE, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"nearline {self.args[0]} exited ({self.proc.returncode}):\n{self.tail()}")

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"nearline {self.args[0]} ignored SIGTERM; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def kill_broker(stack: PrivateStack) -> float:
    """SIGKILL the private broker (no controlled shutdown, no flush), start it again; the
    seconds it was away."""
    store = StackState(stack.settings.state_dir)
    with store.locked():
        record = store.load()["kafka"]
    ref = ProcessRef(int(record["pid"]), int(record["started"]))
    assert ref.alive(), "the private broker is not running"
    began = time.monotonic()
    ref.stop(signal.SIGKILL, timeout=10)
    wait_for_port(stack.settings.kafka_port)
    stack.start_kafka()
    return time.monotonic() - began


def wait_for_port(port: int, timeout: float = 120) -> None:
    """Wait until ``port`` can be listened on again: after a SIGKILL, the dead broker's
    connections may hold it for a while (the stack's start refuses a port in use)."""
    began = time.monotonic()
    holders = ""
    while not port_free(port):
        if not holders:
            holders = subprocess.run(
                ["ss", "-tanp", f"( sport = :{port} )"], capture_output=True, text=True
            ).stdout
        assert time.monotonic() - began < timeout, f"port {port} still held:\n{holders}"
        time.sleep(0.2)
    if holders:
        print(f"port {port} was held for {time.monotonic() - began:.1f} s after the kill:")
        print(holders.strip())


def restart_broker(stack: PrivateStack) -> float:
    """A graceful broker restart (SIGTERM, as an operator's); the seconds it was away."""
    began = time.monotonic()
    stack.restart_kafka()
    return time.monotonic() - began
