"""Response shapes, declared for the OpenAPI docs (``/docs``), and their JSON builders.

Handlers return the builders' plain dicts in a ``JSONResponse``: FastAPI then skips
re-validating each answer against these models, which would cost more than computing it.

Example::

    return JSONResponse(recommendations_json(answer, data, k=10))
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serving.answers import Answer, Pick
from serving.item_data import ItemData


class Item(BaseModel):
    item_id: str
    score: float
    reason: str = Field(examples=["because you watched Star Wars (1977)"])
    source: str = Field(description="nearline, online, offline, trending or fallback")
    title: str | None = None


class Recommendations(BaseModel):
    user_id: str
    source: str = Field(description="The first source in the fallback order that had items.")
    model_version: int = Field(description="Model behind the source's items (0: none).")
    serving_model_version: int = Field(description="Model in force on this replica.")
    items: list[Item]
    degraded: list[str] = Field(description="Steps that failed and were skipped.")


class Similar(BaseModel):
    item_id: str
    source: str
    model_version: int
    items: list[Item]
    degraded: list[str]


class EventsAccepted(BaseModel):
    accepted: int
    by_type: dict[str, int]
    event_ids: list[str]


class EventRejection(BaseModel):
    index: int
    reason: str = Field(examples=["missing-field", "invalid-value", "unknown-type"])
    message: str


class EventsRejected(BaseModel):
    detail: str
    accepted: int
    rejected: list[EventRejection]


class CurrentModel(BaseModel):
    loaded: bool
    version: int
    created_at: int | None = None
    loaded_at: float | None = None
    items: int = 0
    users: int = 0
    dim: int = 0
    metrics: dict[str, float] = {}
    refusals: list[dict[str, Any]] = []


def item_json(pick: Pick, data: ItemData) -> dict[str, Any]:
    return {
        "item_id": pick.item_id,
        "score": pick.score,
        "reason": pick.reason,
        "source": pick.source,
        "title": data.titles.get(pick.item_id),
    }


def recommendations_json(answer: Answer, data: ItemData) -> dict[str, Any]:
    return {
        "user_id": answer.user_id,
        "source": answer.source,
        "model_version": answer.model_version,
        "serving_model_version": answer.serving_model_version,
        "items": [item_json(p, data) for p in answer.items],
        "degraded": list(answer.degraded),
    }
