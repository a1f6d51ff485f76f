"""What a recommendation request asks and what it gets back, independent of HTTP.

Sources, in the order the recommender tries them (see :mod:`serving.recommender`):
``nearline`` (the worker's set), ``online`` (computed now from the model), ``offline`` (the
batch top-N), ``trending`` (popularity from the event store) and ``fallback`` (the model's
item biases: popular with everyone, when nothing else is available).

Example::

    query = Query(user_id="42", k=10, exclude=frozenset({"50"}), device="tv")
    answer = recommender.recommend(query)
    answer.source, [pick.item_id for pick in answer.items]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

SOURCES = ("nearline", "online", "offline", "trending", "fallback")


@dataclass(frozen=True, slots=True)
class Query:
    """One request: who, how many, and the context (signals, device, filters)."""

    user_id: str
    k: int
    exclude: frozenset[str] = frozenset()
    recent: tuple[str, ...] = ()
    """Items the user just interacted with, newest first (request context)."""
    device: str | None = None
    genre: str | None = None
    """Only items of this genre (lower case)."""


class Pick(NamedTuple):
    """One recommended item, with why and where it came from. (Tuples, like
    :class:`Answer`: a request builds a dozen, and a frozen dataclass costs twice as much to
    build.)"""

    item_id: str
    score: float
    reason: str
    source: str


class Answer(NamedTuple):
    user_id: str
    items: tuple[Pick, ...]
    source: str
    """The first source that contributed items (``fallback`` when none did)."""
    model_version: int
    """Version of the model behind ``source``'s items (0: none, e.g. trending)."""
    serving_model_version: int
    """Version of the model in force on this replica when the request started."""
    degraded: tuple[str, ...] = ()
    """Steps that failed on the way (e.g. ``offline: database unavailable``)."""
