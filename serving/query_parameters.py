"""Checking query parameters into a :class:`~serving.answers.Query`, with clear 422s.

The hot read endpoints take their parameters from ``request.query_params`` through these
functions instead of declaring them in the handler's signature: FastAPI's per-request
parameter solving measured about half of a recommendation request's time (0.35 ms of
0.7 ms, FastAPI 0.165). They are still documented in OpenAPI, by :func:`documented`.
Bounds that depend on settings (``k`` up to ``max_k``) and on loaded data (known genres)
could not be static FastAPI constraints anyway. Every problem raises
:class:`~serving.errors.InvalidParameter` naming the parameter.

:func:`query_params` reads the query string as Starlette's ``request.query_params`` does
(same values for ``get``), without building its multi-dict: 1 µs instead of 9 µs here for
``k=10&recent=50``.

Example::

    query = parse_query(runtime, "42", query_params(request.scope))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from serving.answers import Query
from serving.errors import InvalidParameter
from serving.runtime import Runtime

MAX_ID = 256
MAX_LIST = 1000


def documented(*params: tuple[str, str, str, str]) -> dict[str, Any]:
    """``openapi_extra`` declaring (name, in, type, description) parameters."""
    return {
        "parameters": [
            {
                "name": n,
                "in": where,
                "required": where == "path",
                "schema": {"type": kind},
                "description": text,
            }
            for n, where, kind, text in params
        ]
    }


def query_params(scope: Mapping[str, Any]) -> dict[str, str]:
    """The request's query parameters: :func:`parse_query_string` of the scope's."""
    return parse_query_string(scope["query_string"])


def parse_query_string(raw: bytes) -> dict[str, str]:
    """Query parameters, the last value of a repeated one winning: what
    ``request.query_params.get`` answers (Starlette: ``parse_qsl`` of the latin-1 query
    string, keeping blanks). Without ``%`` or ``+`` nothing is unquoted, so splitting is all
    ``parse_qsl`` would do; otherwise it is ``parse_qsl`` itself."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


def check_k(text: str | None, default: int, most: int) -> int:
    if text is None:
        return default
    try:
        k = int(text)
    except ValueError:
        raise InvalidParameter(f"k: must be an integer, got {text!r}") from None
    if not 1 <= k <= most:
        raise InvalidParameter(f"k: must be between 1 and {most}, got {k}")
    return k


def id_list(name: str, text: str | None) -> tuple[str, ...]:
    """A comma-separated list of ids, e.g. ``?exclude=1,2,3`` (blanks ignored)."""
    if not text:
        return ()
    ids = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if len(ids) > MAX_LIST:
        raise InvalidParameter(f"{name}: at most {MAX_LIST} ids, got {len(ids)}")
    if any(len(i) > MAX_ID for i in ids):
        raise InvalidParameter(f"{name}: ids are at most {MAX_ID} characters")
    return ids


def check_id(name: str, value: str) -> str:
    if not value.strip() or len(value) > MAX_ID:
        raise InvalidParameter(f"{name}: must be 1 to {MAX_ID} characters, not blank")
    return value


def parse_query(runtime: Runtime, user_id: str, params: Mapping[str, str]) -> Query:
    """The :class:`Query` for ``user_id`` and the request's query ``params``."""
    settings = runtime.settings
    genre, device = params.get("genre"), params.get("device")
    wanted_genre = genre.strip().lower() if genre else None
    data = runtime.data.current
    if wanted_genre and data.loaded and wanted_genre not in data.known_genres:
        known = ", ".join(sorted(data.known_genres))
        raise InvalidParameter(f"genre: unknown genre {genre!r}; known: {known}")
    if device is not None and (not device.strip() or len(device) > 64):
        raise InvalidParameter("device: must be 1 to 64 characters")
    return Query(
        user_id=check_id("user_id", user_id),
        k=check_k(params.get("k"), settings.default_k, settings.max_k),
        exclude=frozenset(id_list("exclude", params.get("exclude"))),
        recent=id_list("recent", params.get("recent")),
        device=device,
        genre=wanted_genre,
    )
