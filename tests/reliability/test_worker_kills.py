"""Issue #8, item 1: the worker is killed with SIGKILL while events flow.

robinhood/faust #340 lost counter updates after kill -9, and faust-streaming #606 committed
offsets past messages still in flight. Here the nearline worker (``python -m streams``) is
SIGKILLed at seeded random points while a producer streams 100,000 events of 2,500 users,
and restarted each time. Once the group has committed everything, every user's state in
the worker's changelog must equal what the events in the log say: 0 lost, 0 double-counted.

The seed is printed; ``NEARLINE_FAULT_SEED=<n>`` replays a run's events and kill points.
"""

from __future__ import annotations

import os
import random
import time
import uuid
import zlib
from pathlib import Path

from fault_sets import NewSets
from fault_worker import (
    committed_total,
    counters,
    dead_letters,
    precreate_changelogs,
    wait_for_no_lag,
    wait_until_committed,
)
from fault_workload import (
    PacedProducer,
    Truth,
    committed_offsets,
    log_counts,
    read_log,
    synthetic_events,
)
from private_stack import PrivateStack
from worker_harness import Deployment, make_model

from schemas.catalogue import EVENT_PARTITIONS
from schemas.events import Context, ViewEvent
from schemas.model_publisher import publish_model
from streams.signals import KINDS
from streams.state import UserState

SEED = int(os.environ.get("NEARLINE_FAULT_SEED", "8"))
EVENTS = 100_000
USERS = 2_500
ITEMS = 200  # below the seen bound (500): every seen set is exact, not truncated
RATE = 1_500  # events/s offered, so that the stream still flows during the kills
KILLS = 3
TV = Context("s1", "tv")


def view(user: str, item: str) -> ViewEvent:
    return ViewEvent(user, item, 60_000, 0.9, TV)


def test_a_fresh_worker_under_traffic_dead_letters_nothing(
    private_stack: PrivateStack, tmp_path: Path
) -> None:
    """A worker started for the first time (new app id: Faust creates its changelog topics)
    while events already flow must apply every event: none may be dead-lettered."""
    deployment = Deployment(private_stack.bootstrap, uuid.uuid4().hex[:10], tmp_path)
    try:
        events = synthetic_events(SEED + 1, 10_000, 300, ITEMS)
        producer = PacedProducer(deployment.kafka, deployment.catalogue, events, 1_000).start()
        worker = deployment.worker()
        producer.join()
        wait_for_no_lag(deployment, [worker])
        letters = dead_letters(deployment)
        comparison = Truth.of(read_log(deployment.kafka, deployment.catalogue)).compare(
            deployment.states()
        )
        print(f"\nfresh worker under traffic: {comparison.line()}; {letters} dead letters")
        reasons = [line for line in worker.tail(200_000).splitlines() if "refused (" in line]
        assert letters == 0, reasons[:3]
        assert comparison.exact, comparison.mismatches[:10]
    finally:
        deployment.close()


def test_sigkill_three_times_while_events_flow_loses_and_double_counts_nothing(
    private_stack: PrivateStack, tmp_path: Path
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    deployment = Deployment(
        private_stack.bootstrap,
        uuid.uuid4().hex[:10],
        tmp_path,
        NEARLINE_WORKER_SESSION_TIMEOUT_S="6",  # a killed worker's partitions move on sooner
        # Bursts up to 250 ms rather than 25 ms: more events in flight at each kill, and
        # fewer sets to compute and to recover after each restart (a shorter test).
        NEARLINE_WORKER_COALESCE_IDLE_MS="50",
        NEARLINE_WORKER_COALESCE_MAX_MS="250",
    )
    try:
        precreate_changelogs(deployment)
        publish_model(deployment.kafka, deployment.catalogue, make_model(1, n_items=ITEMS))
        events = synthetic_events(SEED, EVENTS, USERS, ITEMS)
        # A kill point is a number of events committed by the group, spread over the stream,
        # then a delay shorter than a burst: the kill lands just after a commit, while bursts
        # begun before it may still be unwritten (where committing too early would show).
        kill_at = sorted(rng.sample(range(5_000, 75_000), KILLS))
        delays = [round(rng.uniform(0, 0.25), 3) for _ in range(KILLS)]
        print(f"\nseed {SEED}: {EVENTS} events of {USERS} users at {RATE}/s")
        print(f"kill points: once {kill_at} events are committed, then after {delays} s")

        worker = deployment.worker()
        producer = PacedProducer(deployment.kafka, deployment.catalogue, events, RATE).start()
        at_restart: dict[tuple[str, int], int] = {}
        states_at_restart: dict[str, UserState] = {}
        for n, (threshold, delay) in enumerate(zip(kill_at, delays, strict=True), 1):
            # Past the kill point, and past the restart (the worker is processing again),
            # unless the restarted worker had nothing left to do.
            past = min(max(threshold, sum(at_restart.values(), 1)), EVENTS)
            wait_until_committed(deployment, worker, past)
            time.sleep(delay)  # the random point itself, not a synchronisation
            worker.check_alive()
            worker.kill()
            at_restart = committed_offsets(deployment.kafka, deployment.group, deployment.catalogue)
            states_at_restart = deployment.states()
            print(
                f"kill {n}: SIGKILL with {producer.sent} produced, "
                f"{sum(at_restart.values())} committed, "
                f"{sum(sum(s.counts) for s in states_at_restart.values())} applied in the "
                "changelog; restarted"
            )
            worker = deployment.worker()

        producer.join()
        drained = wait_for_no_lag(deployment, [worker])
        print(
            f"producer: {producer.sent} sent, {producer.acknowledged()} acknowledged; "
            f"lag 0 {drained:.0f} s after the last event"
        )

        # Results keep flowing after the last restart: a new view each for 20 users, and a
        # set naming each of them.
        sets = NewSets(deployment.kafka, deployment.catalogue)
        probes = [view(f"u{n}", "i1") for n in range(20)]
        deployment.send(probes)
        got = sets.wait_for_triggers({p.event_id for p in probes}, [worker])
        sets.close()
        wait_for_no_lag(deployment, [worker])

        log = read_log(deployment.kafka, deployment.catalogue)
        missing, duplicated, foreign = log_counts(log, [*events, *probes])
        comparison = Truth.of(log).compare(deployment.states())
        letters = dead_letters(deployment)
        assert worker.stop() == 0
        last = counters(worker)
        # The last worker starts at the committed offsets and must hand every later message
        # to the agent once: those at or below their user's offset mark in the state it
        # recovered are duplicates, the others are applied.
        topics = {kind: topic_of(deployment, kind) for kind in KINDS}
        handled = [m for m in log if m.offset >= at_restart[(topics[m.kind], m.partition)]]
        replays = sum(
            1
            for m in handled
            if m.offset <= states_at_restart.get(m.user, UserState()).offsets[KINDS.index(m.kind)]
        )
        print(f"after the last restart: {len(got)} sets for {len(probes)} probe events")
        print(f"log: {len(log)} events, {missing} missing, {duplicated} twice, {foreign} foreign")
        print(f"state: {comparison.line()}; {letters} dead letters")
        print(
            f"last worker: {last.applied} applied (expected {len(handled) - replays}), "
            f"{last.duplicates} duplicates ignored ({replays} replayed, "
            f"{last.duplicates - replays} handed twice), "
            f"{last.published} sets, {last.dead} dead letters"
        )
        print(f"kills: {KILLS}; duration {time.monotonic() - started:.0f} s")
        assert (missing, duplicated, foreign) == (0, 0, 0)
        assert comparison.exact, comparison.mismatches[:10]
        assert letters == 0
        assert (last.applied, last.dead) == (len(handled) - replays, 0)
        # No replayed message may go unseen (a skipped message would be lost had it not been
        # applied before). A few may be seen twice: Faust fetches while the tables recover,
        # then seeks back to the committed offsets and hands the last message fetched before
        # that seek once more (its read-offset filter is `>=`), at most once per partition.
        assert replays <= last.duplicates <= replays + len(at_restart)
    finally:
        deployment.close()


def topic_of(deployment: Deployment, kind: str) -> str:
    return str(deployment.catalogue.topic(f"events.{kind}").name)


def partition_of(user: str) -> int:
    """Where the event producer puts ``user`` (librdkafka's default partitioner: CRC-32)."""
    return zlib.crc32(user.encode()) % EVENT_PARTITIONS


def test_offsets_are_never_committed_past_an_open_burst(
    private_stack: PrivateStack, tmp_path: Path
) -> None:
    """faust-streaming #606, made deterministic: two users share a partition; the first
    user's burst is kept open (an event every second, within the idle window) while the
    second user's burst, which came after it in the partition, is written and acknowledged.
    The group must not commit past the open burst's first event: after a SIGKILL the
    restarted worker resumes at the committed offset, and an event below it that never
    reached the state would be lost for good."""
    deployment = Deployment(
        private_stack.bootstrap,
        uuid.uuid4().hex[:10],
        tmp_path,
        NEARLINE_WORKER_SESSION_TIMEOUT_S="6",
        # x's burst is kept open by an event a second: an idle window of 5 s leaves room
        # for a loaded machine's pauses (at 2 s, one closed it early in about 1 run in 20).
        NEARLINE_WORKER_COALESCE_IDLE_MS="5000",
        NEARLINE_WORKER_COALESCE_MAX_MS="60000",
        NEARLINE_WORKER_COMMIT_INTERVAL_S="0.3",
    )
    try:
        precreate_changelogs(deployment)
        users = [f"kim-{n}" for n in range(40)]
        x = users[0]
        y = next(u for u in users[1:] if partition_of(u) == partition_of(x))
        tp = (topic_of(deployment, "view"), partition_of(x))
        worker = deployment.worker()
        sets = NewSets(deployment.kafka, deployment.catalogue)
        opening = view(x, "i0")
        other = view(y, "i1")
        deployment.send([opening, other])  # offsets 0 and 1 of the same partition
        sent = [opening, other]
        y_done: float | None = None
        while y_done is None or time.monotonic() - y_done < 2.0:
            # y's set came and several commit intervals passed: y's event is acknowledged.
            time.sleep(1.0)  # the scenario's pace: x's burst stays open (idle window 5 s)
            keep_open = view(x, f"i{len(sent)}")
            deployment.send([keep_open])
            sent.append(keep_open)
            sets.collect()
            if y_done is None and any(s.trigger_event_id == other.event_id for s in sets.seen):
                y_done = time.monotonic()
            assert not any(s.user_id == x for s in sets.seen), "x's burst closed too early"
            assert len(sent) < 30, "y's set never came"
            worker.check_alive()
        offsets = committed_offsets(deployment.kafka, deployment.group, deployment.catalogue)
        print(
            f"\nx={x}, y={y} share {tp[0]}[{tp[1]}]: x's burst open since offset 0, y's event "
            f"(offset 1) written and acknowledged; committed offset {offsets[tp]}; SIGKILL"
        )
        worker.kill()
        worker = deployment.worker()
        wait_for_no_lag(deployment, [worker])
        comparison = Truth.of(read_log(deployment.kafka, deployment.catalogue)).compare(
            deployment.states()
        )
        print(f"after SIGKILL and restart: {comparison.line()}")
        assert offsets[tp] == 0, "committed past an event still in flight"
        assert comparison.exact, comparison.mismatches[:10]
        assert committed_total(deployment) == len(sent)
    finally:
        deployment.close()
