"""The event agent: thin glue between Faust and :class:`~streams.processor.EventProcessor`.

One agent reads the three event topics (co-partitioned, so Faust gives each worker the same
partition numbers of all three). Acknowledgements are manual: a message is acknowledged
once its dead letter is on the broker, or once its burst's state and set are (see
:mod:`streams.output`), and Faust commits offsets only below the first unacknowledged
message. Only the agent's acknowledgements reach Faust's commits (:mod:`streams.transport`),
and each partition's messages are applied in offset order without a hole
(:mod:`streams.continuity`).

Failure policy:

- a message that cannot be decoded, or that meets a bug while being applied, goes to the
  dead-letter topic with a reason, and processing continues;
- anything else (the dead-letter topic unreachable, a bug outside a message) stops the
  worker with a non-zero exit, so that a supervisor restarts it: a Faust agent that died
  quietly would leave a worker that runs but does nothing.

Example::

    register_agents(runtime)     # done by streams.app.build
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import faust
from faust.types import EventT, StreamT

from schemas.events import DeadLetter
from streams.progress import Progress
from streams.transport import Consumer

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)


def register_agents(runtime: Runtime) -> None:
    app = runtime.app
    topic = app.topic(
        *(t.name for t in runtime.catalogue.event_topics),
        key_type=bytes,
        value_type=bytes,
        # Raw bytes: every message is decoded by the shared codec, not by Faust.
        key_serializer="raw",
        value_serializer="raw",
    )
    app.agent(topic, name="nearline-events")(_agent(runtime))

    def forget(*args: Any, **kwargs: Any) -> None:
        runtime.processor.forget()
        runtime.continuity.reset()

    # A partition may come back after another worker changed its states.
    app.on_partitions_revoked.connect(forget)
    app.on_partitions_assigned.connect(forget)


def _agent(runtime: Runtime) -> Callable[[StreamT[Any]], Awaitable[None]]:
    async def nearline_events(stream: StreamT[Any]) -> None:
        try:
            await _consume(runtime, stream)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await _fail(runtime.app, "the event agent", exc)
            raise

    return nearline_events


CRASH_EXIT_S = 30.0


async def _fail(app: faust.App, what: str, exc: BaseException) -> None:
    log.critical("%s failed; stopping the worker so a supervisor restarts it", what, exc_info=exc)
    # Faust can hang for ever stopping after a crash (committing through a consumer that
    # already left the group: robinhood/faust#684, #484): exit regardless.
    timer = threading.Timer(CRASH_EXIT_S, _hard_exit)
    timer.daemon = True
    timer.start()
    await app.crash(exc)


def _hard_exit() -> None:
    log.critical("still running %g s after a crash; exiting now", CRASH_EXIT_S)
    logging.shutdown()
    os._exit(70)


class InOrder:
    """Releases each partition's events for acknowledgement in offset order.

    Bursts end out of order (a user who keeps sending holds their burst open while a later
    user's is written), but Faust must never see an acknowledged offset above one still in
    flight: its commit takes the first run of consecutive acknowledged offsets and, when
    only one message is missing at the head, or before the partition's first commit,
    commits past it (faust-streaming #606). A SIGKILL then loses that event.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._waiting: dict[tuple[str, int], deque[EventT[Any]]] = {}
        self._done: set[int] = set()
        self._head_since: dict[tuple[str, int], float] = {}
        self._clock = clock
        self.released = 0

    def track(self, event: EventT[Any]) -> None:
        msg = event.message
        tp = (msg.topic, msg.partition)
        waiting = self._waiting.setdefault(tp, deque())
        if not waiting:
            self._head_since[tp] = self._clock()
        waiting.append(event)

    def release(self, done: Iterable[EventT[Any]]) -> list[EventT[Any]]:
        touched = set()
        for event in done:
            self._done.add(id(event))
            touched.add((event.message.topic, event.message.partition))
        out: list[EventT[Any]] = []
        for tp in touched:
            waiting = self._waiting.get(tp)
            before = len(out)
            while waiting and id(waiting[0]) in self._done:
                self._done.discard(id(waiting[0]))
                out.append(waiting.popleft())
            if len(out) > before:
                self._head_since[tp] = self._clock()
        self.released += len(out)
        return out

    def waiting(self) -> int:
        """Events tracked and not yet released."""
        return sum(len(w) for w in self._waiting.values())

    def oldest(self) -> tuple[str, int, int, float] | None:
        """The partition whose first unreleased event has waited longest: its topic,
        partition, that event's offset, and since when it has been first."""
        heads = [(self._head_since[tp], tp, w[0]) for tp, w in self._waiting.items() if w]
        if not heads:
            return None
        since, (topic, partition), event = min(heads, key=lambda h: h[0])
        return topic, partition, event.message.offset, since


async def _consume(runtime: Runtime, stream: StreamT[Any]) -> None:
    await runtime.model_service.caught_up(runtime.settings.model_wait_s)
    # Everything alive now (Faust, the model's id maps, recovered tables) lives as long as
    # the worker: out of the collector's sight, so that full collections scan only what
    # the stream creates. Without this, each one paused the worker for 100+ ms.
    gc.freeze()
    # noack() is on the concrete Stream only; the agent is always handed one.
    events = cast(faust.Stream[Any], stream).noack()
    order = InOrder()
    ticker = asyncio.ensure_future(_tick(runtime, events, order, Progress(runtime, order)))
    try:
        async for event in events.events():
            msg = event.message
            if not await runtime.continuity.admit(msg.tp, msg.offset):
                # Handed before, or after a hole (it comes again once the hole is filled).
                cast(Consumer, runtime.app.consumer).drop(msg)
                continue
            order.track(event)
            await _one(runtime, events, event, order)
    finally:
        ticker.cancel()
        try:  # best effort: what is not acknowledged here is replayed and republished
            runtime.processor.flush()
            # Blocking on purpose: the loop is stopping, and an await here could be
            # cancelled before the last deliveries are acknowledged.
            await _ack(events, order.release(runtime.output.flush(5.0)))
        except Exception:
            log.warning("could not publish the last sets while stopping", exc_info=True)
        finally:
            p = runtime.processor
            log.info(
                "event agent stopping: %d events applied, %d duplicates ignored, "
                "%d sets published, %d dead letters",
                p.applied,
                p.duplicates,
                p.published,
                runtime.letters.posted,
            )


async def _one(runtime: Runtime, events: StreamT[Any], event: EventT[Any], order: InOrder) -> None:
    msg = event.message
    try:
        letter = runtime.processor.handle(
            event, msg.topic, msg.partition, msg.offset, msg.key, msg.value
        )
    except Exception as exc:
        log.exception("%s[%d]@%d: processing failed", msg.topic, msg.partition, msg.offset)
        detail = f"{type(exc).__name__}: {exc}"
        letter = DeadLetter.for_message(
            msg.topic, msg.partition, msg.offset, msg.key, msg.value, "processing-failed", detail
        )
    if letter is not None:
        await runtime.letters.post(letter)
        await _ack(events, order.release([event]))
        return
    await _ack(events, order.release(runtime.output.poll()))


async def _tick(runtime: Runtime, events: StreamT[Any], order: InOrder, progress: Progress) -> None:
    """Every quarter of the idle window: write the bursts that are over, and acknowledge
    the events whose writes the broker has confirmed. Every ``progress_s``: the progress
    line."""
    settings = runtime.settings
    interval = max(0.001, min(settings.coalesce_idle_ms, settings.coalesce_max_ms) / 4000)
    every = settings.progress_s
    next_report = time.monotonic() + every
    try:
        while True:
            await asyncio.sleep(interval)
            runtime.processor.flush_due()
            await _ack(events, order.release(runtime.output.poll()))
            if every and time.monotonic() >= next_report:
                next_report += every * (1 + (time.monotonic() - next_report) // every)
                log.info("%s", progress.line())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await _fail(runtime.app, "the publication ticker", exc)


async def _ack(events: StreamT[Any], tokens: Iterable[EventT[Any]]) -> None:
    consumer = cast(Consumer, events.app.consumer)
    try:
        for token in tokens:
            consumer.agent_acks(token.message)  # the only acknowledgements it lets through
            await events.ack(token)
    finally:
        consumer.agent_acks(None)
