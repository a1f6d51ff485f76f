"""A thread that reads the run's new recommendation sets and credits them to sent events.

Each set goes to the :class:`~deploy.demo.coverage.CoverageTracker`; when a featured
user's last planned event is covered, ``on_user_done`` is told (the showcase then asks the
server for their "after").

Example::

    watcher = SetWatcher(RecsReader(kafka, catalogue), tracker, {"405": 6}, showcase.ready)
    watcher.start(); ...; watcher.stop()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from deploy.demo.coverage import CoverageTracker
from deploy.demo.recs_reader import RecsReader


class SetWatcher(threading.Thread):
    def __init__(
        self,
        reader: RecsReader,
        tracker: CoverageTracker,
        planned: Mapping[str, int],
        on_user_done: Callable[[str], None],
    ) -> None:
        super().__init__(name="demo-sets", daemon=True)
        self.reader, self.tracker = reader, tracker
        self.planned, self.on_user_done = dict(planned), on_user_done
        self.stop_event = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                for recs, arrived in self.reader.poll(0.05):
                    user = recs.user_id
                    if self.tracker.arrived(user, recs.trigger_event_id, arrived) and (
                        self.tracker.covered_by_user[user] == self.planned.get(user)
                    ):
                        self.on_user_done(user)
        except BaseException as exc:  # kept for the main thread, which raises it
            self.failure = exc
        finally:
            self.reader.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
