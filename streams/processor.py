"""The per-event pipeline, without Kafka: apply each event, then recompute once per burst.

:meth:`EventProcessor.handle` decodes a message, applies it to the user's state (kept in
memory while the user is pending; duplicates change nothing) and to trending, and marks
the user pending. A pending user's set is recomputed and published once their burst is over:

    a *burst* is a run of one user's events each arriving within ``coalesce_idle_ms`` of
    the previous one; it is cut short after ``coalesce_max_ms`` from its first event or
    ``coalesce_max_events`` events, so a user who never pauses still gets fresh sets.

Each burst yields one state write and exactly one set, naming its last event. The messages
of a burst are *tokens* that the writer hands back only once the broker has both writes,
so the caller acknowledges them (and Kafka commits their offsets) only then. A duplicate
still marks its user pending: if the worker died after the state write reached the broker
but before the set did, the replayed events are duplicates, and republishing is what
delivers the set.

Example::

    processor = EventProcessor(intake, states, latest, board, holder, output, settings, codec)
    letter = processor.handle(event, msg.topic, msg.partition, msg.offset, msg.key, msg.value)
    processor.flush_due()
    for token in output.poll():
        ack(token)
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from schemas.codec import Codec
from schemas.events import DeadLetter, now_ms
from streams.intake import Intake
from streams.model import ModelHolder
from streams.recommender import Tuning, recommend_many
from streams.settings import StreamsSettings
from streams.state import Limits, UserState, applied
from streams.trending_board import TrendingBoard

log = logging.getLogger(__name__)

READY_LIMIT = 256
"""Full bursts that wait for the next flush at most; more are flushed at once."""

Token = TypeVar("Token")
TokenIn = TypeVar("TokenIn", contravariant=True)


class StateStore(Protocol):
    """A table the processor reads and keeps up to date locally (a
    :class:`~streams.tables.KeyedTable` in the worker); ``topic`` is its changelog."""

    @property
    def topic(self) -> str: ...

    def get(self, key: bytes) -> bytes | None: ...

    def remember(self, key: bytes, value: bytes) -> None: ...


class Writer(Protocol[TokenIn]):
    """Produces bursts' writes and releases each burst's tokens once all its writes are
    delivered (:class:`~streams.output.Output` in the worker)."""

    def write_many(
        self,
        bursts: Sequence[tuple[int, Sequence[tuple[str, bytes, bytes]], Sequence[TokenIn]]],
    ) -> None: ...


@dataclass(slots=True)
class Pending(Generic[Token]):
    partition: int
    state: UserState
    trigger: str
    first: float
    last: float
    changed: bool = False
    """Whether ``state`` differs from the stored one (some event of the burst was new)."""
    tokens: list[Token] = field(default_factory=list)


class EventProcessor(Generic[Token]):
    def __init__(
        self,
        intake: Intake,
        states: StateStore,
        latest: StateStore,
        board: TrendingBoard,
        models: ModelHolder,
        output: Writer[Token],
        settings: StreamsSettings,
        codec: Codec,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], int] = now_ms,
    ) -> None:
        self.intake, self.states, self.latest, self.board = intake, states, latest, board
        self.models, self.output, self.codec = models, output, codec
        self.clock, self.wall = clock, wall
        self.limits = Limits(
            settings.recent_interactions, settings.seen_items, settings.recent_event_ids
        )
        self.tuning = Tuning(
            settings.top_n,
            settings.fold_in_lambda,
            settings.blend_weight,
            settings.recency_half_life_s * 1000,
        )
        self.idle = settings.coalesce_idle_ms / 1000
        self.max_wait = settings.coalesce_max_ms / 1000
        self.max_events = settings.coalesce_max_events
        self.pending: dict[bytes, Pending[Token]] = {}
        self.ready: list[tuple[bytes, Pending[Token]]] = []
        """Full bursts, in arrival order, waiting for the next flush (see :meth:`handle`)."""
        self.batch_limit = READY_LIMIT
        # Decoded states of recently active users, so that a busy user's state is not
        # parsed again on every burst. Only this processor writes the table, but a
        # rebalance may hand a partition to another worker and back: forget() then.
        self._decoded: OrderedDict[bytes, UserState] = OrderedDict()
        self.cache_users = settings.state_cache_users
        self.applied = self.duplicates = self.published = 0

    def handle(
        self,
        token: Token,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
    ) -> DeadLetter | None:
        """Apply one message; a dead letter is returned (not sent) for bad input, and then
        ``token`` is the caller's to acknowledge once the letter is delivered."""
        signal = self.intake.read(topic, partition, offset, key, value)
        if isinstance(signal, DeadLetter):
            return signal
        user = signal.user_id.encode()
        pending = self.pending.get(user)
        if pending is not None and len(pending.tokens) >= self.max_events:
            # The burst is full: it gets its set before this event, computed with the
            # next flush's batch (one stacked computation for many sets, not one each).
            self.ready.append((user, self.pending.pop(user)))
            state, pending = pending.state, None
            if len(self.ready) >= self.batch_limit:
                self.flush([])
        else:
            state = pending.state if pending is not None else self._stored(user)
        new = applied(state, signal, offset, self.limits)
        if new is None:
            self.duplicates += 1
        else:
            self.applied += 1
            self.board.record(partition, signal)
            state = new
        now = self.clock()
        if pending is None:
            pending = self.pending[user] = Pending(partition, state, signal.event_id, now, now)
        pending.state, pending.trigger, pending.last = state, signal.event_id, now
        pending.changed = pending.changed or new is not None
        pending.tokens.append(token)
        return None

    def _stored(self, user: bytes) -> UserState:
        state = self._decoded.get(user)
        if state is not None:
            return state
        stored = self.states.get(user)
        return UserState() if stored is None else UserState.from_bytes(stored)

    def _remember(self, user: bytes, state: UserState) -> None:
        self._decoded[user] = state
        self._decoded.move_to_end(user)
        if len(self._decoded) > self.cache_users:
            self._decoded.popitem(last=False)

    def forget(self) -> None:
        """Drop decoded states (call when partitions are revoked or assigned)."""
        self._decoded.clear()

    def due(self, now: float | None = None) -> list[bytes]:
        """Users whose burst is over (see the module docstring)."""
        now = self.clock() if now is None else now
        return [
            user
            for user, p in self.pending.items()
            if now - p.last >= self.idle
            or now - p.first >= self.max_wait
            or len(p.tokens) >= self.max_events
        ]

    def flush_due(self) -> None:
        self.flush(self.due())

    def flush(self, users: list[bytes] | None = None) -> None:
        """Write the states and sets of the full bursts, and of ``users`` (default: every
        pending user); their tokens come back from the writer once the broker has them.
        The sets flushed together are computed together (one stacked computation), and
        each user's are written in the order of their bursts."""
        chosen = list(self.pending) if users is None else users
        flushed, self.ready = self.ready, []
        flushed.extend((u, self.pending.pop(u)) for u in chosen)
        if not flushed:
            return
        sets = self._recommend(flushed)
        bursts = []
        for (user, pending), recs in zip(flushed, sets, strict=True):
            writes: list[tuple[str, bytes, bytes]] = []
            if pending.changed:  # one state write per burst, none for replays
                value = pending.state.to_bytes()
                self.states.remember(user, value)
                writes.append((self.states.topic, user, value))
            self._remember(user, pending.state)
            if recs is not None:
                writes.append((self.latest.topic, user, recs))
                self.latest.remember(user, recs)
                self.published += 1
            bursts.append((pending.partition, writes, pending.tokens))
        self.output.write_many(bursts)

    def _recommend(self, flushed: list[tuple[bytes, Pending[Token]]]) -> list[bytes | None]:
        requests = [(user.decode(), p.state, p.trigger) for user, p in flushed]
        model, now = self.models.current, self.wall()
        try:
            sets = recommend_many(requests, model, self.board.top, self.tuning, now)
            return [self.codec.encode(recs.SCHEMA, recs.to_dict()) for recs in sets]
        except Exception:
            if len(requests) == 1:
                # A bug met by this user's data must not stall the partition: their state
                # is written, and their next event tries again.
                log.exception("recomputing %r failed; no set published", flushed[0][0])
                return [None]
            # Find the user whose data trips the bug; the others still get their sets.
            return [out for one in flushed for out in self._recommend([one])]
