"""The online computation without HTTP: fallback order, business rules, reasons."""

from __future__ import annotations

import pytest

from schemas.events import RecommendedItem
from serving.answers import Query
from serving.item_data import DataSlot, ItemData
from serving.recent_items import RecentItems
from serving.recommendation_store import RecommendationStore
from serving.recommender import Recommender
from serving.served_model import ModelSlot
from tests.unit.test_serving_fakes import make_artifact, make_data, recs


@pytest.fixture
def parts() -> tuple[Recommender, ModelSlot, RecommendationStore, DataSlot, RecentItems]:
    models, store, data, signals = ModelSlot(), RecommendationStore(), DataSlot(), RecentItems()
    models.swap(make_artifact(version=3))
    data.current = make_data()
    store.caught_up = True
    return (
        Recommender(models, store, data, signals, device_weight=0.0),
        models,
        store,
        data,
        signals,
    )


def ids(answer: object) -> list[str]:
    return [p.item_id for p in answer.items]  # type: ignore[attr-defined]


def test_a_nearline_set_comes_first_with_its_reasons_and_version(parts) -> None:
    recommender, _, store, _, _ = parts
    store.put(recs("u1", ["7", "3", "5"], version=2))
    answer = recommender.recommend(Query("u1", k=3))
    assert answer.source == "nearline" and answer.model_version == 2
    assert answer.serving_model_version == 3
    assert ids(answer) == ["7", "3", "5"]
    assert answer.items[0].reason == "nearline pick 7"


def test_a_nearline_set_older_than_the_offline_set_is_superseded(parts) -> None:
    recommender, _, store, _, _ = parts
    store.put(recs("u1", ["7"], source="nearline", at=1000))
    store.put(recs("u1", ["4", "6"], source="offline", at=2000))
    answer = recommender.recommend(Query("u1", k=2))
    # u1 is known to the model and has no signals: the offline list is next in line.
    assert answer.source == "offline" and ids(answer) == ["4", "6"]


def test_recent_items_fold_in_online_before_the_offline_list(parts) -> None:
    recommender, _, store, _, _ = parts
    store.put(recs("new", ["1", "2"], source="offline"))
    answer = recommender.recommend(Query("new", k=5, recent=("15", "12")))
    assert answer.source == "online" and answer.model_version == 3
    # Items 11-20 point one way, 1-10 the other: a drama watcher gets dramas.
    assert all(11 <= int(i) <= 20 for i in ids(answer))
    assert not {"15", "12"} & set(ids(answer)), "already-seen items are never recommended"
    assert all(
        p.reason in ("because you watched Movie 15", "because you watched Movie 12")
        for p in answer.items
    )


def test_events_remembered_by_the_replica_count_as_recent(parts) -> None:
    recommender, _, _, _, signals = parts
    signals.add("new", "3")
    answer = recommender.recommend(Query("new", k=4))
    assert answer.source == "online"
    assert all(1 <= int(i) <= 10 for i in ids(answer)) and "3" not in ids(answer)


def test_a_known_user_without_sets_or_signals_is_scored_with_the_trained_vector(parts) -> None:
    recommender = parts[0]
    answer = recommender.recommend(Query("u2", k=3))  # u2's vector points at items 11-20
    assert answer.source == "online"
    assert all(11 <= int(i) <= 20 for i in ids(answer))
    assert {p.reason for p in answer.items} == {"from your viewing history"}


def test_an_unknown_user_gets_trending_then_the_model_fallback(parts) -> None:
    recommender, models, _, data, _ = parts
    answer = recommender.recommend(Query("stranger", k=3))
    assert answer.source == "trending" and ids(answer) == ["20", "19", "18"]
    assert answer.model_version == 0 and answer.items[0].reason == "popular now"
    data.current = ItemData()  # no popularity loaded (database never answered)
    answer = recommender.recommend(Query("stranger", k=3))
    assert answer.source == "fallback" and ids(answer) == ["1", "2", "3"]
    assert answer.items[0].reason == "popular with everyone"


def test_with_nothing_loaded_the_answer_is_empty_not_an_error() -> None:
    recommender = Recommender(ModelSlot(), RecommendationStore(), DataSlot(), RecentItems())
    answer = recommender.recommend(Query("anyone", k=5))
    assert answer.items == () and answer.source == "fallback"


def test_offline_rows_from_the_database_are_used_when_given(parts) -> None:
    recommender = parts[0]
    rows = [RecommendedItem("9", 2.0, "4"), RecommendedItem("8", 1.0, None)]
    answer = recommender.recommend(Query("stranger", k=2), offline_rows=rows)
    assert answer.source == "offline" and ids(answer) == ["9", "8"]
    assert [p.reason for p in answer.items] == ["because you watched Movie 4", "picked for you"]


def test_exclusions_and_genre_filter_apply_to_every_source_and_later_sources_fill(parts) -> None:
    recommender, _, store, _, _ = parts
    store.put(recs("u1", ["1", "12", "2", "13"]))
    answer = recommender.recommend(Query("u1", k=4, exclude=frozenset({"2"}), genre="comedy"))
    assert answer.source == "nearline"
    assert ids(answer)[0] == "1", "the nearline item passing the rules keeps its place"
    assert "2" not in ids(answer) and all(int(i) <= 10 for i in ids(answer))
    assert len(answer.items) == 4
    assert [p.source for p in answer.items][1:] == ["online"] * 3, "filled by the next step"


def test_device_context_re_ranks_towards_what_that_device_watches(parts) -> None:
    recommender, _, _, data, _ = parts
    recommender.device_weight = 0.5
    data.current = make_data({"18": 1000, "20": 10, "19": 10}, device="tv")
    plain = recommender.recommend(Query("stranger", k=3))
    on_tv = recommender.recommend(Query("stranger", k=3, device="tv"))
    assert ids(plain)[0] == "18"
    on_tv_web = recommender.recommend(Query("stranger", k=3, device="phone"))
    assert ids(on_tv_web) == ids(plain), "a device without views leaves the order alone"
    assert on_tv.items[0].reason == "popular on tv"


def test_device_re_rank_moves_items_within_a_model_list(parts) -> None:
    recommender, _, _, data, _ = parts
    plain = recommender.recommend(Query("u2", k=3))
    last = ids(plain)[-1]
    data.current = make_data({last: 1000}, device="tv")
    recommender.device_weight = 0.9
    assert ids(recommender.recommend(Query("u2", k=3, device="tv")))[0] == last
