"""The demo's child processes (`nearline worker`, `nearline serve`): started in their own
process group, logged to a file, and stopped for sure.

Each child leads a new session, so a Ctrl-C in the terminal reaches only the demo, which
then stops the children in order instead of all processes at once. Stopping signals the
whole group (SIGTERM, then SIGKILL after a grace period), so nothing a child started
survives it. On Linux a child also asks the kernel for SIGTERM should the demo itself die
without cleaning up (see :mod:`deploy.demo.parent_guard`).

Example::

    worker = Child("worker", nearline_command("worker"), env, run_dir / "worker.log")
    worker.start()
    ...
    worker.stop()          # returns the exit status
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.demo.parent_guard import guarded
from deploy.processes import tail
from schemas.errors import StackError


def nearline_command(*args: str) -> list[str]:
    """``nearline <args>`` run by this interpreter, so it uses the same environment."""
    return [sys.executable, "-m", "deploy.cli", *args]


class ChildFailed(StackError):
    """A child process exited while the demo needed it."""


class Child:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, list(argv), dict(env), log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                guarded(self.argv),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Raise :class:`ChildFailed`, with the end of its log, if the child has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            last = tail(self.log, 8).strip().replace("\n", " | ")
            raise ChildFailed(
                f"the {self.name} exited with status {self.proc.returncode}; "
                f"its log ({self.log}) ends: {last[-600:]}"
            )

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:  # the whole group is gone already
            pass

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the child, SIGKILL its group if it is still there."""
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            code = self.proc.wait(10)
        # The leader is gone; take down anything it left in its group.
        self.signal(signal.SIGKILL)
        return code

    def stop(self, timeout: float = 20.0) -> int | None:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)


def stop_all(children: Sequence[Child], timeout: float = 20.0) -> dict[str, int | None]:
    """SIGTERM every child at once, then wait for each; exit statuses by name."""
    for child in children:
        if child.running():
            child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    return {c.name: c.wait(max(0.1, deadline - time.monotonic())) for c in children}


def inherit(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child: ours (PATH, locale, KAFKA_* credentials) plus
    ``overrides``. Children read their settings from it, as every nearline process does."""
    return {**os.environ, **overrides}
