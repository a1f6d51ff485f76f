"""The worker's periodic progress line: what it applied, published and committed.

A worker that runs but stops moving (a partition held back by one unacknowledged event, a
writer that lost its broker, commits that no longer advance) is invisible without it: the
line says, every ``NEARLINE_WORKER_PROGRESS_S`` seconds, how far each stage got and what
waits::

    progress: 25415 events applied, 144 duplicates, 0 dead letters, 3276 sets published,
    25466 acknowledged; offsets read to 84366, committed to 83353; waiting: 13 bursts
    open, 0 writes in flight, 93 events to acknowledge (oldest: w793b123cfc.events.view[4]@7062
    for 0.0 s)

The counts are this process's. The offsets are Faust's (its monitor), summed over the
event topics' partitions this worker holds: "read to" is one past the last message read,
"committed to" the next one the group would read after a restart.

Example::

    report = Progress(runtime, order)        # order: the agent's InOrder
    log.info("%s", report.line())
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol


class Waiting(Protocol):
    """What :class:`~streams.agents.InOrder` tells about the events it holds back."""

    released: int

    def waiting(self) -> int: ...

    def oldest(self) -> tuple[str, int, int, float] | None: ...


def offsets_of(offsets: Mapping[Any, int] | None, topics: Iterable[str]) -> int:
    """The sum of a monitor's per-partition offsets over ``topics``."""
    names = set(topics)
    return sum(offset for tp, offset in (offsets or {}).items() if tp.topic in names)


class Progress:
    def __init__(
        self, runtime: Any, order: Waiting, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.runtime, self.order, self.clock = runtime, order, clock
        self.topics = [t.name for t in runtime.catalogue.event_topics]

    def line(self) -> str:
        r = self.runtime
        p = r.processor
        monitor = r.app.monitor
        # The monitor keeps the offset of the last message read, and the committed offset
        # (the next to read): read + 1 per partition is comparable with committed.
        reads = {tp: o + 1 for tp, o in (monitor.tp_read_offsets or {}).items()}
        read = offsets_of(reads, self.topics)
        committed = offsets_of(monitor.tp_committed_offsets, self.topics)
        oldest = self.order.oldest()
        held = ""
        if oldest is not None:
            topic, partition, offset, since = oldest
            held = f" (oldest: {topic}[{partition}]@{offset} for {self.clock() - since:.1f} s)"
        return (
            f"progress: {p.applied} events applied, {p.duplicates} duplicates, "
            f"{r.letters.posted} dead letters, {p.published} sets published, "
            f"{self.order.released} acknowledged; offsets read to {read}, committed to "
            f"{committed}; waiting: {len(p.pending) + len(p.ready)} bursts open, "
            f"{r.output.in_flight} writes in flight, "
            f"{self.order.waiting()} events to acknowledge{held}"
            f"{self._skips()}{self._holds()}"
        )

    def _holds(self) -> str:
        """Event partitions whose commit Faust holds back (see streams.transport), if any."""
        holds = getattr(self.runtime.app.consumer, "commit_holds", None)
        found = holds(self.topics) if holds is not None else []
        if not found:
            return ""
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        return f"; commits held: {', '.join(found[:3])}{more}"

    def _skips(self) -> str:
        """What was done about messages Faust skipped (see streams.transport), if any."""
        c = self.runtime.continuity
        refused = getattr(self.runtime.app.consumer, "refused_acks", 0)
        if not (refused or c.refetched or c.gaps or c.dropped or c.again):
            return ""
        return (
            f"; Faust's skips: {refused} acknowledgements refused, {c.refetched} holes "
            f"refetched ({c.dropped} messages dropped for it), {c.gaps} gaps without "
            f"messages, {c.again} messages handed twice dropped"
        )
