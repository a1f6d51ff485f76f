"""A steady HTTP load on the recommendation endpoint, and what each request got.

Each thread sends on a fixed schedule with its own connection. Latency is counted from the
time a request was due (open loop: when answers slow down, the requests that wait behind
them count that wait, as a user's would); the service time, from sending to the answer, is
reported beside it.

Example::

    load = SteadyLoad(url, rate=150, threads=6, users=[f"u{n}" for n in range(1000)]).start()
    load.mark("worker killed")
    ...
    load.stop()
    print(load.summary())
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float
    """Monotonic time the request was due."""
    seconds: float
    """From due time to answer: waiting behind a slow answer counts (open loop)."""
    service: float
    """From sending to answer."""
    status: int
    """HTTP status, or 0 when no answer came (connection error, timeout)."""
    source: str
    detail: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class SteadyLoad:
    def __init__(
        self,
        url: str,
        *,
        rate: float,
        threads: int,
        users: Sequence[str],
        items: Sequence[str],
        seed: int = 0,
        timeout: float = 10.0,
    ) -> None:
        self.url, self.rate, self.n_threads = url, rate, threads
        self.users, self.items, self.seed, self.timeout = users, items, seed, timeout
        self.outcomes: list[Outcome] = []
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]
        self.started_at = 0.0

    def start(self) -> SteadyLoad:
        self.started_at = time.monotonic()
        self.mark("start")
        for thread in self._threads:
            thread.start()
        return self

    def mark(self, label: str) -> None:
        self.marks.append((time.monotonic(), label))

    def stop(self) -> None:
        self.mark("end")
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def _params(self, rng: random.Random) -> dict[str, str]:
        roll = rng.random()
        params = {"k": "10"}
        if roll < 0.3:  # a third carry recent items: the online fold-in
            params["recent"] = ",".join(rng.sample(list(self.items), 2))
        elif roll < 0.45:
            params["device"] = rng.choice(("tv", "mobile", "web"))
        return params

    def _run(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        interval = self.n_threads / self.rate
        due = self.started_at + n * interval / self.n_threads
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # the schedule, not a synchronisation
                user = rng.choice(self.users)
                sent = time.monotonic()
                try:
                    response = client.get(
                        f"/v1/users/{user}/recommendations", params=self._params(rng)
                    )
                    body = response.json() if response.status_code == 200 else {}
                    now = time.monotonic()
                    outcome = Outcome(
                        due,
                        now - due,
                        now - sent,
                        response.status_code,
                        str(body.get("source", "")),
                        "" if response.status_code == 200 else response.text[:200],
                    )
                except httpx.HTTPError as exc:
                    now = time.monotonic()
                    outcome = Outcome(due, now - due, now - sent, 0, "", repr(exc)[:200])
                with self._lock:
                    self.outcomes.append(outcome)
                due += interval

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def summary(self) -> str:
        """Totals, error rate, latency and sources, overall and between each pair of marks."""
        lines = [self._line("all", self.outcomes)]
        for (begin, label), (end, _) in zip(self.marks, self.marks[1:], strict=False):
            window = [o for o in self.outcomes if begin <= o.at < end]
            lines.append(self._line(label, window))
        return "\n".join(lines)

    def _line(self, label: str, outcomes: Sequence[Outcome]) -> str:
        if not outcomes:
            return f"  {label}: no requests"
        span = max(o.at for o in outcomes) - min(o.at for o in outcomes) or 1.0
        ms = [o.seconds * 1000 for o in outcomes]
        service = [o.service * 1000 for o in outcomes]
        bad = sum(1 for o in outcomes if o.status != 200)
        sources = Counter(o.source for o in outcomes if o.status == 200)
        return (
            f"  {label}: {len(outcomes)} requests ({len(outcomes) / span:.0f}/s), "
            f"{bad} failed ({100 * bad / len(outcomes):.2f} %); latency p50 "
            f"{percentile(ms, 0.5):.1f} / p99 {percentile(ms, 0.99):.1f} / max {max(ms):.0f} ms "
            f"(service p50 {percentile(service, 0.5):.1f} / p99 {percentile(service, 0.99):.1f}"
            f" ms); sources {dict(sources.most_common())}"
        )
