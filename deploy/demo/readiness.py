"""Step 4 of the demo: waiting until the server and the worker really answer.

The server is ready when ``/ready`` says 200 and it has read the recommendations topic to
its end (so a "before" answer already includes the offline sets). The worker is ready when
it has turned one probe event into a set: that proves the whole event path (group joined,
tables recovered, model loaded), where a log line would only prove it started.

Example::

    wait_for_server(client, server_child, deadline)
    wait_for_worker(kafka, catalogue, worker, deadline, probe_item="50", probe_ts_ms=ts)
"""

from __future__ import annotations

import http.client
import time

from deploy.demo.children import Child
from deploy.demo.http_probe import ServerClient
from deploy.demo.recs_reader import RecsReader
from schemas.catalogue import Catalogue
from schemas.errors import StackError
from schemas.events import Context, ViewEvent
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings

PROBE_USER = "nearline-demo-probe"


class NotReady(StackError):
    """A child did not become ready in time."""


def wait_for_server(client: ServerClient, child: Child, deadline: float) -> dict[str, object]:
    """The ``/ready`` body once the server is ready and caught up with the sets."""
    while True:
        child.check()
        try:
            status, body = client.get("/ready")
            if status == 200 and body["recommendations"]["caught_up"]:
                return dict(body)
        except (OSError, http.client.HTTPException):
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise NotReady(f"the server was not ready in time; see {child.log}")
        time.sleep(0.2)


def wait_for_worker(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    child: Child,
    deadline: float,
    *,
    probe_item: str,
    probe_ts_ms: int,
) -> float:
    """Send one probe view and wait for its set; return the seconds that took.

    The probe carries the replay's event time (``probe_ts_ms``): trending decays in event
    time, and a probe stamped "now", decades after ML-100K, would zero its partition's
    counts for the rest of the replay.
    """
    reader = RecsReader(kafka, catalogue)
    try:
        probe = ViewEvent(
            user_id=PROBE_USER,
            item_id=probe_item,
            context=Context(session_id="demo-probe", device="web"),
            duration_ms=0,
            progress=1.0,
            ts=probe_ts_ms,
        )
        sent = time.monotonic()
        with EventProducer(kafka, catalogue) as producer:
            producer.send_event(probe)
        while True:
            child.check()
            for recs, arrived in reader.poll(0.2):
                if recs.trigger_event_id == probe.event_id:
                    return arrived - sent
            if time.monotonic() > deadline:
                raise NotReady(f"the worker made no set for a probe event in time; see {child.log}")
    finally:
        reader.close()
