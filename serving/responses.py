"""Response shapes, declared for the OpenAPI docs (``/docs``), and their JSON builders.

Handlers return the builders' plain dicts in a ``JSONResponse``: FastAPI then skips
re-validating each answer against these models, which would cost more than computing it.
The recommendations answer, the hottest, is written straight to the bytes Starlette's
``JSONResponse`` would send (:func:`recommendations_body`): the same text, from a template
per item instead of a dict per item walked by the generic encoder.

Example::

    return JSONResponse(recommendations_json(answer, data))
    return Response(recommendations_body(answer, data), media_type="application/json")
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring
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


# Starlette's JSONResponse.render: json.dumps(ensure_ascii=False, allow_nan=False,
# separators=(",", ":")), then UTF-8.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_string = encode_basestring  # what that encoder writes a str with (its C version)
_float = float.__repr__  # and a float


def json_bytes(content: Any) -> bytes:
    """``content`` as ``JSONResponse(content).body``."""
    return _ENCODER.encode(content).encode("utf-8")


def recommendations_body(answer: Answer, data: ItemData) -> bytes:
    """``json_bytes(recommendations_json(answer, data))``, built without the dicts.

    Written field by field for the types an answer has (str ids, reasons and sources,
    float scores, int versions); anything else (a non-finite score, an int score, a
    title that is not a str) takes the generic encoder, so the bytes, and the errors, are
    always the generic ones.
    """
    titles, items = data.titles, []
    for p in answer.items:
        item_id, score, reason, source = p.item_id, p.score, p.reason, p.source
        title = titles.get(item_id)
        if (
            type(item_id) is not str
            or type(score) is not float
            or type(reason) is not str
            or type(source) is not str
            or not (title is None or type(title) is str)
            or not math.isfinite(score)
        ):
            return json_bytes(recommendations_json(answer, data))
        items.append(
            f'{{"item_id":{_string(item_id)},"score":{_float(score)},'
            f'"reason":{_string(reason)},"source":{_string(source)},'
            f'"title":{"null" if title is None else _string(title)}}}'
        )
    user_id, source, version, serving = (
        answer.user_id,
        answer.source,
        answer.model_version,
        answer.serving_model_version,
    )
    if (
        type(user_id) is not str
        or type(source) is not str
        or type(version) is not int
        or type(serving) is not int
        or any(type(d) is not str for d in answer.degraded)
    ):
        return json_bytes(recommendations_json(answer, data))
    degraded = ",".join([_string(d) for d in answer.degraded])
    return (
        f'{{"user_id":{_string(user_id)},"source":{_string(source)},'
        f'"model_version":{version},"serving_model_version":{serving},'
        f'"items":[{",".join(items)}],"degraded":[{degraded}]}}'
    ).encode()
