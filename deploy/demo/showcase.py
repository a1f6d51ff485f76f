"""A few users' recommendations before and after their live events, as the server gives them.

"Before" is asked just before the live phase starts; "after" once a set covering the
user's last live event has arrived and the server answers from the nearline layer (it
reads the same topic, a moment later). Each item shows its title, its source, the model
version behind it and its reason.

Example::

    lines = render("405", ["Titanic (1997)"], before_answer, after_answer, titles)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.client import HTTPException
from typing import Any

from deploy.demo.http_probe import ServerClient
from schemas.errors import NearlineError

ROWS = 5
TITLE_WIDTH = 34
# Sources computed from the model in force on the replica rather than from a stored set.
_SERVING_MODEL_SOURCES = ("online", "fallback")


def item_version(item: Mapping[str, Any], answer: Mapping[str, Any]) -> str:
    """The model version behind one item: the answer's for items of its source, the
    replica's for items computed now, none for trending."""
    if item["source"] == answer["source"]:
        version = int(answer["model_version"])
    elif item["source"] in _SERVING_MODEL_SOURCES:
        version = int(answer["serving_model_version"])
    else:
        version = 0
    return f"v{version}" if version else "-"


def titled(reason: str, titles: Mapping[str, str]) -> str:
    """``reason`` with a trailing item id ("because you watched 316") shown as its title."""
    head, _, last = reason.rpartition(" ")
    return f"{head} {titles[last]}" if head and last in titles else reason


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def answer_lines(
    label: str, answer: Mapping[str, Any] | None, titles: Mapping[str, str]
) -> list[str]:
    if answer is None:
        return [f"  {label}: (no answer)"]
    head = f"  {label}: source {answer['source']}, model v{answer['model_version']}"
    lines = [head]
    for rank, item in enumerate(answer["items"][:ROWS], 1):
        title = _short(item.get("title") or f"item {item['item_id']}", TITLE_WIDTH)
        lines.append(
            f"    {rank}. {title:<{TITLE_WIDTH}} {item['source']:<8} "
            f"{item_version(item, answer):<4} {_short(titled(item['reason'], titles), 48)}"
        )
    return lines


def render(
    user: str,
    watched: Sequence[str],
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    titles: Mapping[str, str],
) -> list[str]:
    """The block printed for one user."""
    shown = ", ".join(_short(t, 28) for t in watched[-3:])
    more = f"{len(watched) - 3} more, then " if len(watched) > 3 else ""
    lines = [f"── user {user}: {len(watched)} live events ({more}{shown})"]
    return lines + answer_lines("before", before, titles) + answer_lines("after ", after, titles)


class Showcase(threading.Thread):
    """Prints each featured user's block once :meth:`ready` is called for them."""

    def __init__(
        self,
        port: int,
        timings: list[float],
        watched: Mapping[str, Sequence[str]],
        titles: Mapping[str, str],
        out: Callable[[str], None],
    ) -> None:
        super().__init__(name="demo-showcase", daemon=True)
        self.client = ServerClient(port, timings)
        self.watched, self.titles, self.out = watched, titles, out
        self.before: dict[str, dict[str, Any]] = {}
        self.shown: set[str] = set()
        self._queue: queue.Queue[str | None] = queue.Queue()

    def take_before(self) -> None:
        for user in self.watched:
            self.before[user] = self.client.recommendations(user, k=ROWS)

    def ready(self, user: str) -> None:
        if user in self.watched:
            self._queue.put(user)

    def run(self) -> None:
        while (user := self._queue.get()) is not None:
            if user not in self.shown:
                try:
                    self.show(user)
                except (OSError, ValueError, HTTPException, NearlineError) as exc:  # say, go on
                    self.shown.add(user)
                    self.out(f"── user {user}: could not ask the server ({exc})")

    def show(self, user: str, wait_s: float = 3.0) -> None:
        """Ask until the answer comes from the nearline layer (or ``wait_s`` passes)."""
        started, after = time.monotonic(), None
        while True:
            after = self.client.recommendations(user, k=ROWS)
            if after["source"] == "nearline" or time.monotonic() - started > wait_s:
                break
            time.sleep(0.05)
        self.shown.add(user)
        block = render(user, self.watched[user], self.before.get(user), after, self.titles)
        self.out("\n".join(block))

    def finish(self) -> None:
        """Show the users still waiting (their sets were late), then stop the thread."""
        self._queue.put(None)
        self.join(30)
        for user in self.watched:
            if user not in self.shown:
                self.show(user, wait_s=0)
        self.client.close()
