"""MovieLens-100K as shipped in the recbole wheel, and its mapping onto ViewEvents."""

from __future__ import annotations

import pytest

from schemas import movielens
from schemas.codec import default_codec


@pytest.fixture(scope="module")
def data() -> movielens.MovieLens:
    return movielens.load()


def test_the_real_data_set_is_complete(data: movielens.MovieLens) -> None:
    assert len(data.ratings) == 100_000
    assert data.ratings.user_id.nunique() == 943
    assert data.ratings.item_id.nunique() == 1682
    assert len(data.items) == 1682 and len(data.users) == 943
    toy_story = data.items.set_index("item_id").loc["1"]
    assert toy_story.title == "Toy Story" and toy_story.year == 1995
    assert "Animation" in toy_story.genres


def test_events_are_valid_deterministic_and_in_time_order(data: movielens.MovieLens) -> None:
    ordered = movielens.in_time_order(data.ratings)
    events = list(movielens.view_events(ordered))
    assert len({e["event_id"] for e in events}) == 100_000
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    again = list(movielens.view_events(ordered.iloc[:100]))
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events[:100]]
    codec = default_codec()
    for event in events[:500]:  # every field passes the consumers' validation
        assert codec.decode("ViewEvent", codec.encode("ViewEvent", event, validate=True)) == event
    first = data.ratings.iloc[0]
    mapped = next(movielens.view_events(data.ratings.iloc[:1]))
    assert mapped["user_id"] == first.user_id and mapped["rating"] == first.rating
    assert mapped["ts"] == int(first.ts) * 1000


def test_missing_data_set_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError

    def missing(name: str) -> None:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(movielens, "distribution", missing)
    with pytest.raises(movielens.DatasetMissing, match="pip install --no-deps recbole==1.2.1"):
        movielens.locate()
