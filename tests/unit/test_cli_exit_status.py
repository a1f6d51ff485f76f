"""`nearline` exits with its command's status: a supervisor restarts a worker only if a
crash exits non-zero, and a shell script must see Ctrl-C and usage errors as failures."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import sys, typer
from deploy.cli import app, main

@app.command("exit3")
def exit3() -> None:
    raise typer.Exit(3)

@app.command("ctrlc")
def ctrlc() -> None:
    raise KeyboardInterrupt

@app.command("fine")
def fine() -> None:
    pass

sys.argv = ["nearline", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("args", "status", "stderr"),
    [
        (["exit3"], 3, ""),
        (["ctrlc"], 130, "nearline: interrupted"),
        (["fine"], 0, ""),
        (["no-such-command"], 2, "No such command 'no-such-command'"),
    ],
)
def test_the_exit_status_is_the_commands(args: list[str], status: int, stderr: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, done.stderr
    assert stderr in done.stderr
    assert "Traceback" not in done.stderr
