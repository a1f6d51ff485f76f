"""The demo's child processes and its stopping: process groups, the parent guard, signals,
clean-up steps. Real processes, no broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from deploy.demo.children import Child, ChildFailed, stop_all
from deploy.demo.role_processes import exit_text
from deploy.demo.stopping import defer, interrupts
from deploy.processes import start_time

# A parent that starts a grandchild in its own process group and ignores SIGTERM, so that
# only a group-wide SIGKILL after the grace period stops both.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    return start_time(pid) is None


def wait_until(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_stopping_a_child_takes_down_its_whole_group(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    child = Child("stubborn", [sys.executable, "-c", STUBBORN], os.environ, log)
    child.start()
    assert child.pid is not None
    assert wait_until(lambda: log.read_text().strip())
    grandchild = int(log.read_text().split()[0])
    assert os.getpgid(child.pid) == child.pid  # its own group, away from the terminal's
    assert os.getpgid(grandchild) == child.pid
    started = time.monotonic()
    codes = stop_all([child], timeout=1.0)
    assert codes == {"stubborn": -signal.SIGKILL}
    assert time.monotonic() - started < 10
    assert wait_until(lambda: gone(grandchild))


def test_a_polite_child_stops_on_sigterm_and_a_dead_one_is_reported(tmp_path: Path) -> None:
    polite = Child(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        os.environ,
        tmp_path / "a.log",
    )
    polite.start()
    polite.check()  # running: no error
    assert polite.stop(timeout=10) == -signal.SIGTERM
    failing = Child(
        "worker",
        [sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
        os.environ,
        tmp_path / "b.log",
    )
    failing.start()
    assert failing.proc is not None and failing.proc.wait(10) == 3
    with pytest.raises(ChildFailed, match=r"the worker exited with status 3; .* ends: boom"):
        failing.check()
    assert (
        exit_text(0) == "exit 0"
        and exit_text(-15) == "SIGTERM"
        and exit_text(None) == ("not started")
    )


def test_a_guarded_child_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    # An intermediate process starts a guarded child, then is SIGKILLed: no clean-up ran,
    # yet the kernel sends the child SIGTERM.
    script = (
        "import os, sys, time\n"
        "from deploy.demo.children import Child\n"
        f"c = Child('x', [sys.executable, '-c', 'import time; time.sleep(600)'], os.environ, "
        f"{str(tmp_path / 'x.log')!r})\n"
        "c.start(); print(c.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    time.sleep(0.5)  # let the guard exec the command
    assert not gone(pid)
    parent.kill()
    parent.wait()
    assert wait_until(lambda: gone(pid)), "the guarded child outlived its parent"


def test_sigterm_unwinds_like_ctrl_c_and_clean_up_is_not_interruptible() -> None:
    said: list[str] = []
    done: list[str] = []
    cleanup = ExitStack()
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupts(said.append) as signals:
        try:
            defer(cleanup, said.append, lambda: done.append("second"))
            defer(cleanup, said.append, lambda: 1 / 0)
            defer(cleanup, said.append, lambda: os.kill(os.getpid(), signal.SIGINT))
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted at once
            pytest.fail("SIGTERM did not interrupt")
        finally:
            signals.hold_off()
            cleanup.close()
    assert done == ["second"]  # ran after a failing step and despite a Ctrl-C
    assert said[0] == "SIGINT: still stopping what the demo started…"
    assert said[1].startswith("warning: clean-up step <lambda> failed: division by zero")
    assert signal.getsignal(signal.SIGTERM) == previous
