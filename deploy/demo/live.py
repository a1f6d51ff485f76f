"""Step 5 of the demo: the live events at a steady rate, watched as they turn into sets.

While the events go out, three threads run beside the sender: one reads the new sets and
measures each event's latency to its covering set, one asks the server for
recommendations at a steady rate (serve latency), and one shows the featured users before
and after their events. After the last event, the phase waits (bounded) for the last sets.

Example::

    result = run_live(kafka, catalogue, plan, port, settings, titles, checks=[worker.check])
    percentiles(result.tracker.latencies, 50, 99), result.serve_timings
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from deploy.demo.coverage import CoverageTracker
from deploy.demo.http_probe import RequestLoop
from deploy.demo.plan import Plan
from deploy.demo.recs_reader import RecsReader
from deploy.demo.set_watch import SetWatcher
from deploy.demo.settings import DemoSettings
from deploy.demo.showcase import Showcase
from deploy.replay import RateLimiter
from schemas import movielens
from schemas.catalogue import Catalogue
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings


@dataclass
class LiveResult:
    tracker: CoverageTracker
    serve_timings: list[float]
    send_s: float = 0.0
    request_errors: int = 0
    unreadable_sets: int = 0

    def problems(self) -> list[str]:
        """What went wrong on the way, for the summary's notes."""
        notes = []
        if self.request_errors:
            notes.append(f"{self.request_errors} steady requests failed (see the server's log)")
        if self.unreadable_sets:
            notes.append(f"{self.unreadable_sets} recommendation sets could not be decoded")
        if self.tracker.covered < self.tracker.sent_count:
            notes.append("some events got no set within the drain timeout: the worker lagged")
        return notes


def run_live(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    plan: Plan,
    port: int,
    settings: DemoSettings,
    titles: Mapping[str, str],
    checks: Sequence[Callable[[], None]] = (),
) -> LiveResult:
    """Replay ``plan.live``; ``checks`` raise if a child process died."""
    result = LiveResult(CoverageTracker(), [])
    live = plan.live
    watched = {
        u: [titles.get(i, f"item {i}") for i in live.loc[live["user_id"] == u, "item_id"]]
        for u in plan.featured
    }
    showcase = Showcase(port, result.serve_timings, watched, titles, tqdm.write)
    showcase.take_before()
    planned = {u: len(items) for u, items in watched.items()}
    reader = RecsReader(kafka, catalogue)
    watcher = SetWatcher(reader, result.tracker, planned, showcase.ready)
    users = list(dict.fromkeys(live["user_id"]))
    requests = RequestLoop(port, users, settings.request_rate, result.serve_timings)
    for thread in (watcher, requests, showcase):
        thread.start()
    finished = False
    try:
        _send(kafka, catalogue, plan, settings.rate, result, checks)
        _drain(result.tracker, watcher, settings.drain_timeout_s, checks)
        finished = True
    finally:
        requests.stop()
        watcher.stop()
        result.request_errors, result.unreadable_sets = requests.errors, reader.unreadable
        if finished:
            showcase.finish()  # anyone whose sets came late is shown now
    return result


def _send(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    plan: Plan,
    rate: float,
    result: LiveResult,
    checks: Sequence[Callable[[], None]],
) -> None:
    limiter, tracker = RateLimiter(rate), result.tracker
    # linger.ms 1: the producer's default 10 ms of batching would count as latency here.
    with (
        EventProducer(kafka, catalogue, config={"linger.ms": 1}) as producer,
        tqdm(total=len(plan.live), unit="ev", desc=f"live events @ {rate:g}/s") as bar,
    ):
        started = time.monotonic()
        for n, record in enumerate(movielens.view_events(plan.live), 1):
            limiter.wait()
            tracker.sent(record["user_id"], record["event_id"], time.monotonic())
            producer.send("ViewEvent", record, validate=False)
            bar.update()
            if n % 500 == 0:
                for check in checks:
                    check()
        producer.flush()
        result.send_s = time.monotonic() - started


def _drain(
    tracker: CoverageTracker,
    watcher: SetWatcher,
    timeout: float,
    checks: Sequence[Callable[[], None]],
) -> None:
    deadline = time.monotonic() + timeout
    with tqdm(total=tracker.sent_count, unit="ev", desc="events with their sets") as bar:
        while time.monotonic() < deadline:
            bar.update(tracker.covered - bar.n)
            if tracker.covered >= tracker.sent_count:
                return
            if watcher.failure is not None:
                raise watcher.failure
            for check in checks:
                check()
            time.sleep(0.1)
