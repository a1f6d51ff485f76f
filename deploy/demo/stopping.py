"""How a demo stops: clean-up steps that always run, and Ctrl-C or SIGTERM held off
while they do.

While the demo runs, SIGTERM is turned into the same KeyboardInterrupt as Ctrl-C, so that
both unwind through the clean-up. Once the clean-up begins (:meth:`Interrupts.hold_off`),
further signals only print a line: a second, impatient Ctrl-C must not cut the stopping of
a child process short and leave it running. The previous handlers come back at the end.
Must be used from the main thread, which owns signal handlers.

Example::

    with interrupts(say) as signals:
        try:
            ...                    # Ctrl-C or SIGTERM raise KeyboardInterrupt here
        finally:
            signals.hold_off()
            cleanup.close()        # not interruptible; each step registered with defer()
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Say = Callable[[str], None]


class Interrupts:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.held = 0

    def interrupt(self, signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def _held(self, signum: int, _frame: FrameType | None) -> None:
        self.held += 1
        if self.held == 1:
            self.say(f"{signal.Signals(signum).name}: still stopping what the demo started…")

    def hold_off(self) -> None:
        for sig in _SIGNALS:
            signal.signal(sig, self._held)


@contextmanager
def interrupts(say: Callable[[str], None]) -> Iterator[Interrupts]:
    handlers = Interrupts(say)
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, handlers.interrupt)
    try:
        yield handlers
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def defer(cleanup: ExitStack, say: Say, step: Callable[..., object], *args: object) -> None:
    """Register a clean-up step that reports its failure instead of raising it, so that
    the other steps still run and the error that stopped the demo stays the one shown."""

    def run() -> None:
        try:
            step(*args)
        except Exception as exc:  # noqa: BLE001 (reported; the other steps must still run)
            say(f"warning: clean-up step {step.__name__} failed: {exc}")

    cleanup.callback(run)
