"""Run a command that is sent SIGTERM when the process that started it dies.

``python -m deploy.demo.parent_guard PARENT_PID COMMAND...`` asks Linux for a signal on
the parent's death (``PR_SET_PDEATHSIG``, kept across exec) and then becomes ``COMMAND``.
It is the demo's last line of defence: if the demo is killed outright and cannot stop its
children, they still stop. Using this instead of Popen's ``preexec_fn`` keeps the fork
safe while the demo runs threads. Elsewhere than Linux it only runs the command.

Example::

    subprocess.Popen(guarded([sys.executable, "-m", "streams"]))
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def guarded(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that it dies with the calling process."""
    return [sys.executable, "-m", "deploy.demo.parent_guard", str(os.getpid()), *argv]


def main(args: list[str]) -> None:
    parent, argv = int(args[0]), args[1:]
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            sys.exit(143)
    os.execv(argv[0], argv)  # noqa: S606 (our own argv, no shell)


if __name__ == "__main__":
    main(sys.argv[1:])
