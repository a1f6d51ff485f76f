"""The events the fault tests produce, and the truth they are checked against.

The truth is computed from the events themselves, read back from the broker's log (so that a
producer that wrote an event twice, or lost one, shows up there first), never from anything
the worker or the sink wrote.

Example::

    events = synthetic_events(seed=7, n_events=100_000, n_users=2_500, n_items=200)
    producer = PacedProducer(kafka, catalogue, events, rate=2_000).start()
    ...
    log = read_log(kafka, catalogue)               # every event message, decoded
    truth = Truth.of(log)                          # per-user counts, seen items, marks
    report = truth.compare(deployment.states())    # lost / double-counted / mismatches
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.events import BrowseEvent, ClickEvent, Context, Event, ViewEvent
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings
from streams.signals import KINDS
from streams.state import UserState

KIND_OF_SCHEMA = {"ClickEvent": "click", "BrowseEvent": "browse", "ViewEvent": "view"}
DEVICES = ("tv", "mobile", "web")


def event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def synthetic_events(
    seed: int,
    n_events: int,
    n_users: int,
    n_items: int,
    *,
    user_prefix: str = "u",
    mean_run: float = 8.0,
) -> list[Event]:
    """``n_events`` events of ``n_users`` users, skewed (a few users are very active), about
    60 % views, 25 % clicks and 15 % browses, over ``n_items`` items ``i0``...

    Users act in runs of consecutive events of one kind (``mean_run`` on average), as
    ML-100K users rate in runs: a run lands in one partition of one topic, and the worker
    coalesces it into one burst, as in production, rather than recomputing a set per event.

    With ``n_items`` below the worker's seen-items bound (500), every user's seen set is
    exactly the set of items they viewed or clicked.
    """
    rng = random.Random(seed)
    users = [f"{user_prefix}{n}" for n in range(n_users)]
    cumulative = list(itertools.accumulate(1 / (rank + 1) ** 0.7 for rank in range(n_users)))
    base = int(time.time() * 1000) - n_events * 10
    events: list[Event] = []
    session = 0
    while len(events) < n_events:
        user = rng.choices(users, cum_weights=cumulative)[0]
        run = min(1 + int(rng.expovariate(1 / (mean_run - 1))), n_events - len(events))
        session += 1
        context = Context(f"s-{user}-{session}", rng.choice(DEVICES))
        kind = rng.choices(("view", "click", "browse"), (0.60, 0.25, 0.15))[0]
        for _ in range(run):
            events.append(_event(rng, kind, user, context, base + 10 * len(events), n_items))
    return events


def _event(
    rng: random.Random, kind: str, user: str, context: Context, ts: int, n_items: int
) -> Event:
    item = f"i{rng.randrange(n_items)}"
    if kind == "view":
        progress = round(rng.uniform(0.05, 1.0), 3)
        return ViewEvent(user, item, 60_000, progress, context, ts=ts, event_id=event_id(rng))
    if kind == "click":
        position = rng.randrange(20)
        return ClickEvent(user, item, "row", position, context, ts=ts, event_id=event_id(rng))
    shown = tuple(f"i{rng.randrange(n_items)}" for _ in range(3))
    return BrowseEvent(user, "home", shown, context, ts=ts, event_id=event_id(rng))


class PacedProducer:
    """Produces ``events`` at about ``rate`` per second from a thread, with the project's
    idempotent :class:`~schemas.producer.EventProducer` (acks=all).

    ``sent`` is how many were handed to the producer; ``acknowledged()`` how many the broker
    has acknowledged so far (exact: librdkafka counts what it still holds). ``join()``
    flushes and re-raises any delivery failure.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        catalogue: Catalogue,
        events: Sequence[Event],
        rate: float,
        *,
        flush_timeout: float = 240.0,
    ) -> None:
        self.events, self.rate, self.flush_timeout = events, rate, flush_timeout
        self.producer = EventProducer(kafka, catalogue)
        self.sent = 0
        self.error: BaseException | None = None
        self.started_at = self.finished_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)

    def start(self) -> PacedProducer:
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            step = max(1, int(self.rate / 50))  # 50 slices a second
            for start in range(0, len(self.events), step):
                if self._stop.is_set():
                    break
                for event in self.events[start : start + step]:
                    self.producer.send(event.SCHEMA, event.to_dict(), validate=False)
                    self.sent += 1
                self.producer.poll(0)
                # Pacing, not synchronisation: the slice's place on the schedule.
                due = self.started_at + (start + step) / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.producer.flush(self.flush_timeout)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.finished_at = time.monotonic()

    def acknowledged(self) -> int:
        self.producer.poll(0)  # serve delivery reports, which the count depends on
        return self.producer.delivered

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the producer did not finish"
        if self.error is not None:
            raise AssertionError(f"the producer failed: {self.error!r}") from self.error
        assert self.producer.failed == 0, self.producer.failures[:3]

    def stop(self) -> None:
        self._stop.set()


@dataclass(frozen=True, slots=True)
class Logged:
    """One event message as it sits in the broker's log."""

    kind: str
    partition: int
    offset: int
    user: str
    event_id: str
    items: tuple[str, ...]
    ts: int


def read_log(kafka: KafkaSettings, catalogue: Catalogue, timeout: float = 60) -> list[Logged]:
    """Every message of the event topics, from the beginning to the current end, decoded."""
    codec = default_codec()
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": "fault-log-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    schema_of = {t.name: t.value_schema for t in catalogue.event_topics}
    tps = [
        TopicPartition(t.name, p, OFFSET_BEGINNING)
        for t in catalogue.event_topics
        for p in range(t.partitions)
    ]
    ends = {}
    for tp in tps:
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)
        ends[(tp.topic, tp.partition)] = high
    pending = {key for key, high in ends.items() if high > 0}
    consumer.assign([tp for tp in tps if (tp.topic, tp.partition) in pending])
    out: list[Logged] = []
    deadline = time.monotonic() + timeout
    try:
        while pending:
            assert time.monotonic() < deadline, f"could not read the log to its end: {pending}"
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    continue  # partition EOF; the end offsets decide
                topic, partition = str(msg.topic()), int(msg.partition() or 0)
                offset = int(msg.offset() or 0)
                schema = schema_of[topic]
                record = codec.decode(schema, msg.value())
                kind = KIND_OF_SCHEMA[schema]
                items = tuple(record["item_ids"]) if kind == "browse" else (record["item_id"],)
                out.append(
                    Logged(
                        kind,
                        partition,
                        offset,
                        record["user_id"],
                        record["event_id"],
                        items,
                        record["ts"],
                    )
                )
                if offset + 1 >= ends[(topic, partition)]:
                    pending.discard((topic, partition))
    finally:
        consumer.close()
    return out


def log_counts(log: Sequence[Logged], events: Sequence[Event]) -> tuple[int, int, int]:
    """(missing, duplicated, foreign): produced events absent from the log, produced events
    the log holds more than once, and logged events nobody produced."""
    logged = Counter(m.event_id for m in log)
    produced = {e.event_id for e in events}
    missing = sum(1 for e in produced if e not in logged)
    duplicated = sum(n - 1 for e, n in logged.items() if n > 1)
    foreign = sum(1 for e in logged if e not in produced)
    return missing, duplicated, foreign


@dataclass
class UserTruth:
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    seen: set[str] = field(default_factory=set)
    marks: list[int] = field(default_factory=lambda: [-1, -1, -1])
    sequence: dict[str, list[tuple[str, int]]] = field(
        default_factory=lambda: {"click": [], "view": []}
    )


@dataclass
class Comparison:
    users: int
    events: int
    applied: int
    lost: int
    double_counted: int
    mismatches: list[str]

    @property
    def exact(self) -> bool:
        return not self.lost and not self.double_counted and not self.mismatches

    def line(self) -> str:
        return (
            f"{self.users} users, {self.events} events in the log, {self.applied} counted in "
            f"state: {self.lost} lost, {self.double_counted} double-counted, "
            f"{len(self.mismatches)} other mismatches"
        )


class Truth:
    """What each user's state must be once every logged event is applied exactly once."""

    def __init__(self, users: Mapping[str, UserTruth], events: int) -> None:
        self.users, self.events = users, events

    @classmethod
    def of(cls, log: Sequence[Logged]) -> Truth:
        users: dict[str, UserTruth] = defaultdict(UserTruth)
        for m in sorted(log, key=lambda m: (m.kind, m.partition, m.offset)):
            truth = users[m.user]
            k = KINDS.index(m.kind)
            truth.counts[k] += 1
            truth.marks[k] = max(truth.marks[k], m.offset)
            if m.kind != "browse":  # a browse weighs 0: nothing seen, nothing recent
                truth.seen.update(m.items)
                truth.sequence[m.kind].append((m.items[0], m.ts))
        return cls(dict(users), len(log))

    def compare(self, states: Mapping[str, UserState], *, recent: int = 50) -> Comparison:
        """Per user, what the design promises exactly:

        - the counts per kind (every event applied once);
        - the seen items, as a set (exact while a user has fewer distinct items than the
          seen bound, 500: the order follows how the three topics interleaved, which
          differs from run to run);
        - the highest applied offset per topic (the replay guard);
        - the recent interactions: for each kind, the newest ones in offset order (a
          suffix of that kind's sequence), ``min(recent, total)`` of them in all. Their
          interleaving across kinds is not promised, for the same reason as the seen order.
        """
        lost = double = applied = 0
        mismatches: list[str] = []
        for user in sorted(set(self.users) | set(states)):
            want = self.users.get(user, UserTruth())
            state = states.get(user, UserState())
            applied += sum(state.counts)
            for k in range(len(KINDS)):
                diff = state.counts[k] - want.counts[k]
                lost += max(0, -diff)
                double += max(0, diff)
            if list(state.counts) != want.counts:
                mismatches.append(f"{user}: counts {state.counts} != {tuple(want.counts)}")
                continue  # the rest follows from the counts
            if set(state.seen) != want.seen or len(state.seen) != len(want.seen):
                mismatches.append(f"{user}: seen differs ({len(state.seen)}/{len(want.seen)})")
            if list(state.offsets) != want.marks:
                mismatches.append(f"{user}: offset marks {state.offsets} != {want.marks}")
            total = sum(len(s) for s in want.sequence.values())
            if len(state.recent) != min(recent, total):
                mismatches.append(f"{user}: {len(state.recent)} recent interactions")
            for kind, sequence in want.sequence.items():
                got = [(item, ts) for item, k, ts, _ in state.recent if k == kind]
                if got != sequence[len(sequence) - len(got) :]:
                    mismatches.append(f"{user}: recent {kind}s are not the newest, in order")
        return Comparison(len(self.users), self.events, applied, lost, double, mismatches)


COORDINATOR_BUSY = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
}


class CommittedReader:
    """Reads a group's committed offsets over the event partitions, again and again.

    A consumer of the group that never joins it, rather than the admin client: an admin
    result is delivered on librdkafka's own thread, where a garbage collection may destroy
    another client, which crashes the process (seen here as a segfault during a broker
    restart; see confluent-kafka-python PR #2129).
    """

    def __init__(self, kafka: KafkaSettings, group: str, catalogue: Catalogue) -> None:
        self.tps = [
            TopicPartition(t.name, p) for t in catalogue.event_topics for p in range(t.partitions)
        ]
        self.consumer = Consumer(
            {**kafka.client_config(), "group.id": group, "enable.auto.commit": False}
        )

    def offsets(self, timeout: float = 60) -> dict[tuple[str, int], int]:
        """Committed offset per event partition (0 where nothing is committed). Right after a
        broker restart the group coordinator answers "load in progress" (or is not known
        yet) until it has read its offsets back; that is waited for, up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                committed = self.consumer.committed(self.tps, timeout=10)
                return {(str(tp.topic), int(tp.partition)): max(tp.offset, 0) for tp in committed}
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                code = error.code() if isinstance(error, KafkaError) else None
                if code not in COORDINATOR_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def close(self) -> None:
        self.consumer.close()


def committed_offsets(
    kafka: KafkaSettings, group: str, catalogue: Catalogue, timeout: float = 60
) -> dict[tuple[str, int], int]:
    """The group's committed offset per event partition (see :class:`CommittedReader`)."""
    reader = CommittedReader(kafka, group, catalogue)
    try:
        return reader.offsets(timeout)
    finally:
        reader.close()


def end_offsets(kafka: KafkaSettings, catalogue: Catalogue) -> dict[Any, int]:
    probe = Consumer({**kafka.client_config(), "group.id": "fault-end-probe"})
    try:
        return {
            (t.name, p): probe.get_watermark_offsets(TopicPartition(t.name, p), timeout=10)[1]
            for t in catalogue.event_topics
            for p in range(t.partitions)
        }
    finally:
        probe.close()
