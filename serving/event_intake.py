"""``POST /v1/events``: validating and producing a batch of events, all or nothing.

The body is one event object or a list of them, shaped like the JSON the event topics
accept, plus ``"type"``: ``click``, ``browse`` or ``view`` (as for ``nearline events
produce``); a missing ``event_id`` or ``ts`` is filled in. Every event is checked first
with exactly the validation the topics apply (the codec's ``validate=True`` path), and
only if all pass are they produced with ``EventProducer.send(..., validate=True)``: a
client that fixes its batch and sends it again never duplicates the valid half.

Example::

    intake = EventIntake(producer, recent)
    accepted = intake.take([{"type": "view", "user_id": "42", "item_id": "50", ...}])
    accepted.counts                      # {"view": 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.codec import Codec, default_codec
from schemas.errors import SchemaError
from schemas.events import new_event_id, now_ms
from serving.errors import InvalidParameter
from serving.recent_items import RecentItems

TYPES: Mapping[str, str] = {"click": "ClickEvent", "browse": "BrowseEvent", "view": "ViewEvent"}


class EventSink(Protocol):
    """What the intake needs of :class:`~schemas.producer.EventProducer`."""

    def send(self, schema: str, record: Mapping[str, Any], *, validate: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class Accepted:
    counts: dict[str, int]
    event_ids: list[str]


class EventIntake:
    """Checks, produces, and remembers each user's viewed and clicked items."""

    def __init__(self, sink: EventSink, recent: RecentItems, codec: Codec | None = None) -> None:
        self.sink, self.recent = sink, recent
        self._codec = codec or default_codec()

    def _check(self, index: int, event: Any) -> tuple[str, str, dict[str, Any]] | dict[str, Any]:
        """(type, schema, record) of a valid event, else its rejection."""
        if not isinstance(event, dict):
            return {"index": index, "reason": "wrong-type", "message": "not a JSON object"}
        record = dict(event)
        kind = record.pop("type", None)
        if kind not in TYPES:
            message = f'"type" must be one of {", ".join(TYPES)}, got {kind!r}'
            return {"index": index, "reason": "unknown-type", "message": message}
        record.setdefault("event_id", new_event_id())
        record.setdefault("ts", now_ms())
        try:
            self._codec.encode(TYPES[kind], record, validate=True)
        except SchemaError as exc:
            return {"index": index, "reason": exc.reason, "message": str(exc)}
        return kind, TYPES[kind], record

    def take(self, body: Any, *, limit: int = 1000) -> Accepted:
        """Produce every event of ``body``, or raise :class:`InvalidParameter` (422) listing
        each invalid one by index, having produced nothing."""
        events = body if isinstance(body, list) else [body]
        if not events:
            raise InvalidParameter("body: no events given")
        if len(events) > limit:
            raise InvalidParameter(f"body: {len(events)} events, at most {limit} per request")
        checked = [self._check(i, e) for i, e in enumerate(events)]
        rejected = [c for c in checked if isinstance(c, dict)]
        if rejected:
            raise InvalidParameter(
                f"{len(rejected)} of {len(events)} events are invalid; none was accepted",
                extra={"accepted": 0, "rejected": rejected},
            )
        counts: Counter[str] = Counter()
        ids = []
        for kind, schema, record in (c for c in checked if isinstance(c, tuple)):
            self.sink.send(schema, record, validate=True)
            counts[kind] += 1
            ids.append(str(record["event_id"]))
            if kind in ("view", "click"):  # a browse only shows items: nothing was seen
                self.recent.add(str(record["user_id"]), str(record["item_id"]))
        return Accepted(dict(counts), ids)
