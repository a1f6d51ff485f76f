"""What the worker takes from one decoded event: who, when, where, which items, how much.

The three event types become one :class:`Signal`. A view weighs ``view_weight`` scaled by
how much was watched (never below :data:`PROGRESS_FLOOR`: starting a film says something);
a click weighs ``click_weight``; a browse is impressions only, so it weighs 0 and marks
nothing as seen.

Example::

    signal = signal_of("ViewEvent", record, Weights(view=1.0, click=0.5))
    signal.kind, signal.items, signal.weight       # ("view", ("i9",), 0.8)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.errors import SchemaError

KINDS = ("click", "browse", "view")
"""Event kinds, in the order their counts are kept."""
KIND_OF_SCHEMA: Mapping[str, str] = {
    "ClickEvent": "click",
    "BrowseEvent": "browse",
    "ViewEvent": "view",
}
PROGRESS_FLOOR = 0.25


@dataclass(frozen=True, slots=True)
class Weights:
    """Weight of one event per kind (a browse always weighs 0)."""

    view: float = 1.0
    click: float = 0.5


@dataclass(frozen=True, slots=True)
class Signal:
    """One event, reduced to what per-user state, trending and fold-in need."""

    kind: str
    event_id: str
    user_id: str
    ts: int
    """Event time, epoch milliseconds."""
    session_id: str
    device: str
    items: tuple[str, ...]
    """The item viewed or clicked, or the items a browse showed."""
    weight: float
    """How strongly the event says "I like these items" (0: not at all)."""

    @property
    def kind_index(self) -> int:
        return KINDS.index(self.kind)


def signal_of(schema: str, record: Mapping[str, Any], weights: Weights) -> Signal:
    """The signal of a decoded event record (a codec-checked wire dict)."""
    kind = KIND_OF_SCHEMA.get(schema)
    if kind is None:
        raise SchemaError(f"{schema} is not an event type", reason="wrong-type")
    context = record["context"]
    if kind == "browse":
        items, weight = tuple(record["item_ids"]), 0.0
    elif kind == "click":
        items, weight = (record["item_id"],), weights.click
    else:
        items = (record["item_id"],)
        weight = weights.view * max(float(record["progress"]), PROGRESS_FLOOR)
    return Signal(
        kind=kind,
        event_id=record["event_id"],
        user_id=record["user_id"],
        ts=record["ts"],
        session_id=context["session_id"],
        device=context["device"],
        items=items,
        weight=weight,
    )
