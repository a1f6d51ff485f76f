"""Hot reload: one reference swapped atomically, in-flight requests keep their model, a
refused model leaves the old one serving."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from serving.answers import Query
from serving.app import create_app
from serving.item_data import DataSlot
from serving.recent_items import RecentItems
from serving.recommendation_store import RecommendationStore
from serving.recommender import Recommender
from serving.served_model import ModelSlot
from serving.settings import ServingSettings
from tests.unit.test_serving_fakes import FakeModels, FakeRecs, make_artifact


def test_swap_replaces_the_reference_and_never_goes_backwards() -> None:
    slot = ModelSlot()
    first = slot.swap(make_artifact(version=2))
    held = slot.current  # what an in-flight request holds
    assert first is held and slot.version == 2
    assert slot.swap(make_artifact(version=1)) is None and slot.version == 2
    slot.swap(make_artifact(version=3, n_items=30))
    assert slot.version == 3 and held is not None and held.version == 2
    assert len(held.item_ids) == 20, "the held model is untouched by the swap"


def test_answers_stay_consistent_while_models_swap_under_concurrent_requests() -> None:
    """Each model has its own catalogue size; an answer mixing two models would name items
    outside the catalogue of the version it reports, or fail outright."""
    slot = ModelSlot()
    slot.swap(make_artifact(version=1, n_items=20))
    recommender = Recommender(slot, RecommendationStore(), DataSlot(), RecentItems())
    errors: list[BaseException] = []
    mixed: list[tuple[int, list[str]]] = []
    answers = [0]
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                answer = recommender.recommend(Query("stranger", k=50, recent=("2", "19")))
                size = 20 + 2 * (answer.serving_model_version - 1)
                got = [p.item_id for p in answer.items]
                if answer.model_version != answer.serving_model_version or any(
                    int(i) > size for i in got
                ):
                    mixed.append((answer.serving_model_version, got))
                answers[0] += 1
            except BaseException as exc:  # noqa: BLE001  (any failure fails the test)
                errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for version in range(2, 60):
        slot.swap(make_artifact(version=version, n_items=20 + 2 * (version - 1)))
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and mixed == []
    assert answers[0] > 0 and slot.version == 59


def test_a_refused_model_leaves_the_old_one_serving_over_http() -> None:
    models = FakeModels(make_artifact(version=1))
    app = create_app(ServingSettings(), model_source=models, recs_source=FakeRecs())
    with TestClient(app) as http:
        models.refuse(2, "model v2 refused: artifact sha256 mismatch")
        body = http.get("/v1/users/u2/recommendations").json()
        assert body["serving_model_version"] == 1 and body["source"] == "online"
        assert http.get("/v1/models/current").json()["version"] == 1
        models.publish(make_artifact(version=3))
        assert http.get("/v1/users/u2/recommendations").json()["serving_model_version"] == 3
