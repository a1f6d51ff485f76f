"""The request path's shortcuts give exactly what the generic code they replace gives.

Query parameters (Starlette's ``QueryParams``), the recommendations body (Starlette's
``JSONResponse``), ``best_rows`` (the copy-and-negate version it replaced) and the fold-in's
strongest part with one recent item.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

from serving.answers import Answer, Pick
from serving.item_data import ItemData
from serving.query_parameters import query_params
from serving.ranking import FoldIn, best_rows
from serving.responses import json_bytes, recommendations_body, recommendations_json

QUERIES = [
    b"",
    b"k=10",
    b"k=10&recent=50",
    b"k=10&recent=50,181&device=tv&genre=comedy",
    b"k=1&k=2",
    b"k",
    b"k=&exclude=",
    b"=5&&&k=3",
    b"a=1=2",
    b"recent=50%2C181",
    b"genre=science+fiction",
    b"genre=%C3%A9t%C3%A9&k=%31",
    b"device=t%ZZv",
    b"x=\xe9",
]


@pytest.mark.parametrize("raw", QUERIES)
def test_query_params_answer_like_starlette(raw: bytes) -> None:
    expected = QueryParams(raw)
    got = query_params({"query_string": raw})
    assert set(got) == set(expected.keys())
    for key in ("k", "recent", "device", "genre", "exclude", "x", "a", "", "missing"):
        assert got.get(key) == expected.get(key)


DATA = ItemData.build(
    [("1", "Amélie", ["Comedy"]), ("2", 'The "Quoted" \\ Film\n', ["Drama"]), ("3", "猫", [])],
    [("1", "web", 3)],
)


def _answer(*picks: Pick, degraded: tuple[str, ...] = ()) -> Answer:
    return Answer('u-1 "x"', picks, "online", 7, 9, degraded)


ANSWERS = [
    _answer(),
    _answer(
        Pick("1", 1.25, "because you watched Amélie", "online"),
        Pick("2", -0.1, "popular now", "trending"),
        Pick("3", 3.0000001192092896, "because you watched 猫", "online"),
        Pick("unknown", 1e-30, "picked for you", "offline"),
        Pick("1", 12345678901.5, "tab\there \u2028 \x00", "fallback"),
    ),
    _answer(Pick("1", 0.5, "r", "online"), degraded=("offline: database unavailable", "é")),
    _answer(Pick("1", 5, "an int score", "trending")),  # the generic encoder writes 5
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_the_recommendations_body_is_what_json_response_sends(answer: Answer) -> None:
    expected = JSONResponse(recommendations_json(answer, DATA)).body
    assert recommendations_body(answer, DATA) == expected
    assert json_bytes(recommendations_json(answer, DATA)) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_fails_as_json_response_does(bad: float) -> None:
    answer = _answer(Pick("1", bad, "r", "online"))
    with pytest.raises(ValueError):
        JSONResponse(recommendations_json(answer, DATA))
    with pytest.raises(ValueError):
        recommendations_body(answer, DATA)


def _best_rows_before(scores: np.ndarray, k: int, banned: np.ndarray | None) -> np.ndarray:
    """best_rows as it was: a banned copy, negated twice."""
    if banned is not None and len(banned):
        scores = scores.copy()
        scores[banned] = -np.inf
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.intp)
    top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    top = top[np.argsort(-scores[top], kind="stable")]
    return np.asarray(top[np.isfinite(scores[top])], np.intp)


def test_best_rows_ranks_as_before() -> None:
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, 60))
        scores = rng.normal(size=n).astype(np.float32)
        if trial % 3 == 0:  # ties
            scores = np.round(scores, 1)
        if trial % 5 == 0:
            scores[rng.integers(0, n)] = [np.nan, np.inf, -np.inf][trial % 3]
        banned = rng.choice(n, int(rng.integers(0, n)), replace=False) if trial % 2 else None
        k = int(rng.integers(0, n + 3))
        got = best_rows(scores, k, banned)
        assert got.tolist() == _best_rows_before(scores, k, banned).tolist()
        assert got.dtype == np.intp


def test_one_recent_item_is_every_rows_strongest() -> None:
    rng = np.random.default_rng(1)
    items = rng.normal(size=(7, 4)).astype(np.float32)
    fold = FoldIn(items[0], items[:1])
    assert fold.strongest(items).tolist() == [0] * 7
    assert fold.strongest(items).tolist() == np.argmax(items @ items[:1].T, axis=1).tolist()
    assert fold.strongest(items[:0]).tolist() == []
