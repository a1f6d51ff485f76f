"""Per-user state: idempotent by source offset and by event id, bounded, round-trips."""

from __future__ import annotations

import uuid

from streams.signals import Signal, Weights, signal_of
from streams.state import DIGEST_CHARS, Limits, UserState, applied, digest


def signal(kind: str = "view", item: str = "i1", ts: int = 1000, **kw: object) -> Signal:
    fields: dict[str, object] = {
        "kind": kind,
        "event_id": str(uuid.uuid4()),
        "user_id": "u1",
        "ts": ts,
        "session_id": "s1",
        "device": "tv",
        "items": (item,),
        "weight": 0.0 if kind == "browse" else 1.0,
    }
    fields.update(kw)
    return Signal(**fields)  # type: ignore[arg-type]


def test_a_new_event_is_counted_once_and_a_redelivery_changes_nothing() -> None:
    event = signal("click")
    once = applied(UserState(), event, offset=5, limits=Limits())
    assert once is not None and once.counts == (1, 0, 0) and once.offsets == (5, -1, -1)
    assert applied(once, event, offset=5, limits=Limits()) is None  # Kafka redelivery
    assert applied(once, event, offset=9, limits=Limits()) is None  # client re-send
    assert applied(once, signal("click"), offset=4, limits=Limits()) is None  # replayed offset


def test_offsets_catch_replays_far_beyond_the_id_ring() -> None:
    limits = Limits(event_ids=2)
    events = [signal(item=f"i{n}") for n in range(10)]
    state = UserState()
    for offset, event in enumerate(events):
        new = applied(state, event, offset, limits)
        assert new is not None
        state = new
    assert len(state.event_ids) == 2 * DIGEST_CHARS
    assert all(applied(state, e, o, limits) is None for o, e in enumerate(events))
    # Without an offset, only the ring can tell, and it remembers the last 2 ids.
    assert applied(state, events[-1], -1, limits) is None
    assert applied(state, events[0], -1, limits) is not None


def test_state_is_bounded() -> None:
    limits = Limits(recent=3, seen=4, event_ids=5)
    state = UserState()
    for n in range(50):
        new = applied(state, signal(item=f"i{n}", ts=n), n, limits)
        assert new is not None
        state = new
    assert [r[0] for r in state.recent] == ["i47", "i48", "i49"]
    assert state.seen == ("i46", "i47", "i48", "i49")
    assert len(state.event_ids) == 5 * DIGEST_CHARS and state.counts == (0, 0, 50)


def test_seen_keeps_each_item_once_most_recent_last_and_browse_marks_nothing() -> None:
    state = UserState()
    for n, (kind, item) in enumerate([("view", "a"), ("click", "b"), ("view", "a")]):
        state = applied(state, signal(kind, item), n, Limits()) or state
    browse = signal("browse", items=("x", "y"))
    state = applied(state, browse, 3, Limits()) or state
    assert state.seen == ("b", "a") and state.counts == (1, 1, 2)
    assert [(r[0], r[1]) for r in state.recent] == [("a", "view"), ("b", "click"), ("a", "view")]


def test_session_follows_the_newest_session_only() -> None:
    state = applied(UserState(), signal(ts=100), 0, Limits())
    assert state is not None and state.session == ("s1", "tv", 100)
    state = applied(state, signal(ts=200, session_id="s2", device="phone"), 1, Limits())
    assert state is not None and state.session == ("s2", "phone", 200)
    late = applied(state, signal(ts=150, session_id="s1"), 2, Limits())  # an older session
    assert late is not None and late.session == ("s2", "phone", 200)
    later = applied(late, signal(ts=250, session_id="s2", device="tv"), 3, Limits())
    assert later is not None and later.session == ("s2", "tv", 250)


def test_wire_form_round_trips_and_is_compact() -> None:
    state = UserState()
    for n in range(60):
        state = (
            applied(state, signal(item=f"item-{n}", ts=1_700_000_000_000 + n), n, Limits()) or state
        )
    data = state.to_bytes()
    assert UserState.from_bytes(data) == state
    assert len(data) < 4500


def test_ring_matches_whole_digests_only() -> None:
    probe = signal()
    token = digest(probe.event_id)
    # The probe's digest appears in the ring, but straddling two stored digests.
    straddling = UserState(event_ids="0" * 8 + token + "0" * 8)
    assert applied(straddling, probe, -1, Limits()) is not None
    aligned = UserState(event_ids="0" * 16 + token)
    assert applied(aligned, probe, -1, Limits()) is None


def test_signals_weigh_views_by_progress_and_ignore_browses() -> None:
    base = {
        "event_id": str(uuid.uuid4()),
        "user_id": "u",
        "ts": 1,
        "context": {"session_id": "s", "device": "tv"},
    }
    view = signal_of("ViewEvent", {**base, "item_id": "i", "progress": 0.1}, Weights(2.0, 0.5))
    full = signal_of("ViewEvent", {**base, "item_id": "i", "progress": 1.0}, Weights(2.0, 0.5))
    click = signal_of("ClickEvent", {**base, "item_id": "i"}, Weights(2.0, 0.5))
    browse = signal_of("BrowseEvent", {**base, "item_ids": ["a", "b"]}, Weights(2.0, 0.5))
    assert (view.weight, full.weight, click.weight, browse.weight) == (0.5, 2.0, 0.5, 0.0)
    assert browse.items == ("a", "b") and view.kind_index == 2


def test_item_ids_containing_the_wire_separator_round_trip() -> None:
    state = UserState()
    for n, item in enumerate(["plain", "a|b", "|"]):
        state = applied(state, signal(item=item), n, Limits()) or state
    assert UserState.from_bytes(state.to_bytes()) == state
    assert state.seen == ("plain", "a|b", "|")
