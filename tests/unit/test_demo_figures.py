"""The demo's measurements and what it prints: coverage latency, percentiles, the showcase
blocks and the summary."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from deploy.demo.coverage import CoverageTracker, percentiles
from deploy.demo.showcase import item_version, render, titled
from deploy.demo.summary import Summary


def test_a_set_covers_its_trigger_and_the_users_earlier_pending_events() -> None:
    tracker = CoverageTracker()
    tracker.sent("u1", "a", 1.0)
    tracker.sent("u2", "x", 1.1)
    tracker.sent("u1", "b", 1.2)
    tracker.sent("u1", "c", 1.3)
    assert tracker.arrived("u1", "b", 1.5) == 2  # a and b, not c
    assert [round(v, 3) for v in tracker.latencies] == [0.5, 0.3]
    assert tracker.arrived("u1", "b", 1.6) == 0  # a republished set covers nothing new
    assert tracker.arrived("u1", None, 1.6) == 0  # an offline set has no trigger
    assert tracker.arrived("u2", "c", 1.6) == 0  # another user's event
    assert tracker.arrived("u1", "c", 2.3) == 1
    assert tracker.covered == 3 and tracker.sent_count == 4 and tracker.sets == 2
    assert tracker.covered_by_user == {"u1": 3}


def test_coverage_is_exact_with_a_sender_and_a_reader_thread() -> None:
    tracker = CoverageTracker()
    n = 5_000

    def send() -> None:
        for i in range(n):
            tracker.sent(f"u{i % 7}", f"e{i}", float(i))

    sender = threading.Thread(target=send)
    sender.start()
    i = 0
    while i < n:  # cover each event as soon as it was sent, racing the sender
        if tracker.arrived(f"u{i % 7}", f"e{i}", float(i) + 0.5):
            i += 1
        else:
            time.sleep(0)  # let the sender run
    sender.join()
    assert tracker.covered == n and set(tracker.latencies) == {0.5}


def test_percentiles() -> None:
    values = [i / 1000 for i in range(1, 101)]
    p50, p99 = percentiles(values, 50, 99)
    assert math.isclose(p50, 0.0505) and math.isclose(p99, 0.09901)
    assert all(math.isnan(v) for v in percentiles([], 50, 99))


def answer(source: str, *items: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "user_id": "7",
        "source": source,
        "model_version": 3 if source != "trending" else 0,
        "serving_model_version": 4,
        "items": [
            {"item_id": i, "score": 1.0, "reason": r, "source": s, "title": f"Film {i}"}
            for i, s, r in items
        ],
        "degraded": [],
    }


def test_each_item_shows_its_source_model_version_and_reason_with_titles() -> None:
    before = answer("offline", ("1", "offline", "similar to 9"), ("2", "trending", "trending now"))
    after = answer("nearline", ("5", "nearline", "because you watched 9"), ("6", "online", "x"))
    titles = {"9": "Heat (1995)"}
    block = render("7", ["A", "B", "C", "D"], before, after, titles)
    assert block[0] == "── user 7: 4 live events (1 more, then B, C, D)"
    assert block[1] == "  before: source offline, model v3"
    assert "Film 1" in block[2] and "offline" in block[2] and "v3" in block[2]
    assert block[2].endswith("similar to Heat (1995)")
    assert "trending" in block[3] and " - " in block[3] and block[3].endswith("trending now")
    assert block[4] == "  after : source nearline, model v3"
    assert block[5].endswith("because you watched Heat (1995)") and "v3" in block[5]
    assert item_version(after["items"][1], after) == "v4"  # online: the replica's model
    assert render("7", [], None, None, {})[1:] == ["  before: (no answer)", "  after : (no answer)"]


def test_titles_replace_only_a_trailing_known_item_id() -> None:
    titles = {"50": "Star Wars (1977)"}
    assert titled("because you watched 50", titles) == "because you watched Star Wars (1977)"
    assert titled("because you watched 51", titles) == "because you watched 51"
    assert titled("50", titles) == "50"  # no words before it: not a reason we know
    assert titled("trending on web", titles) == "trending on web"


def test_the_summary_states_every_figure() -> None:
    summary = Summary(
        run_id="demo-x",
        history_events=80_000,
        history_stored=80_000,
        model_version=2,
        metrics={"precision@10": 0.123, "auc": 0.889, "lightfm_protocol_auc": 0.9},
        holdout="recent",
        live_events=2000,
        live_s=8.0,
        rate=250,
        covered=1990,
        sets=700,
        latencies=[0.010, 0.020, 0.030],
        serve=[0.002] * 99 + [0.050],
        wall_s=61.4,
        notes=["kept: …"],
    )
    text = "\n".join(summary.lines())
    assert "80,000 events replayed, 80,000 stored" in text
    assert "2,000 in 8.0 s: 250 events/s (asked 250/s)" in text
    assert "p50 20 ms, p99 30 ms (1,990 of 2,000 events covered by 700 sets)" in text
    assert "serve           p50 2.0 ms, p99 2.5 ms (100 requests)" in text
    assert "model           v2" in text
    assert "precision@10 0.123  auc 0.889 (holdout: recent)" in text
    assert "lightfm_protocol" not in text
    assert "wall time       61 s" in text and text.endswith("note            kept: …")
