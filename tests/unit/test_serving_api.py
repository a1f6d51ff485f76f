"""Every endpoint through FastAPI's TestClient, with fakes for the model, topic and database."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas.events import RecommendedItem
from serving.app import create_app
from serving.settings import ServingSettings
from tests.unit.test_serving_fakes import (
    FakeDatabase,
    FakeModels,
    FakeProducer,
    FakeRecs,
    make_artifact,
    recs,
)

Client = Callable[..., TestClient]


@pytest.fixture
def client() -> Iterator[Client]:
    """Start an app with the given fakes; waits until the fake database was loaded."""
    clients: list[TestClient] = []

    def start(
        *,
        models: FakeModels | None = None,
        sets: FakeRecs | None = None,
        database: FakeDatabase | None = None,
        producer: FakeProducer | None = None,
        **settings: Any,
    ) -> TestClient:
        app = create_app(
            ServingSettings(**settings),
            model_source=models if models is not None else FakeModels(make_artifact(version=3)),
            recs_source=sets or FakeRecs(),
            database=database,
            event_producer=producer,
        )
        test_client = TestClient(app)
        test_client.__enter__()
        clients.append(test_client)
        refresher = app.state.background.refresher
        if refresher is not None and database is not None and not database.down:
            assert refresher.loaded.wait(5)
        return test_client

    yield start
    for c in clients:
        c.__exit__(None, None, None)


def view(user: str = "42", item: str = "5", **extra: Any) -> dict[str, Any]:
    return {
        "type": "view",
        "user_id": user,
        "item_id": item,
        "duration_ms": 60_000,
        "progress": 0.5,
        "context": {"session_id": "s1", "device": "tv"},
        **extra,
    }


def test_recommendations_name_source_version_and_carry_reasons(client: Client) -> None:
    http = client(sets=FakeRecs(recs("42", ["7", "3", "5"], version=2)), database=FakeDatabase())
    body = http.get("/v1/users/42/recommendations", params={"k": 2}).json()
    assert body["source"] == "nearline" and body["model_version"] == 2
    assert body["serving_model_version"] == 3
    assert [i["item_id"] for i in body["items"]] == ["7", "3"]
    assert body["items"][0] == {
        "item_id": "7",
        "score": 1.0,
        "reason": "nearline pick 7",
        "source": "nearline",
        "title": "Movie 7",
    }


def test_an_unknown_user_gets_a_cold_start_answer_not_a_404(client: Client) -> None:
    response = client(database=FakeDatabase()).get("/v1/users/nobody/recommendations")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "trending" and len(body["items"]) == 10


def test_exclude_recent_and_genre_parameters_are_applied(client: Client) -> None:
    http = client(database=FakeDatabase())
    params = {"k": 5, "exclude": "14, 16", "recent": "12,13", "genre": "Drama"}
    body = http.get("/v1/users/nobody/recommendations", params=params).json()
    got = [i["item_id"] for i in body["items"]]
    assert body["source"] == "online" and len(got) == 5
    assert not {"12", "13", "14", "16"} & set(got)
    assert all(11 <= int(i) <= 20 for i in got)
    assert body["items"][0]["reason"].startswith("because you watched Movie 1")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 0}, "k: must be between 1 and 100, got 0"),
        ({"k": 101}, "k: must be between 1 and 100, got 101"),
        ({"k": "ten"}, "k: must be an integer, got 'ten'"),
        ({"genre": "western"}, "genre: unknown genre 'western'; known: comedy, drama"),
        ({"device": "x" * 65}, "device: must be 1 to 64 characters"),
        ({"exclude": ",".join(str(i) for i in range(1001))}, "exclude: at most 1000 ids"),
    ],
)
def test_invalid_parameters_get_a_422_with_a_clear_message(
    client: Client, params: dict[str, Any], message: str
) -> None:
    response = client(database=FakeDatabase()).get("/v1/users/42/recommendations", params=params)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


def test_similar_items_come_from_the_model(client: Client) -> None:
    http = client(database=FakeDatabase())
    body = http.get("/v1/items/3/similar", params={"k": 4, "exclude": "1"}).json()
    got = [i["item_id"] for i in body["items"]]
    assert body["source"] == "online" and body["model_version"] == 3
    assert len(got) == 4 and "3" not in got and "1" not in got
    assert all(int(i) <= 10 for i in got), "neighbours are the item's own group"
    assert body["items"][0]["reason"] == "similar to Movie 3"


def test_similar_items_without_a_model_read_the_table_then_404_when_unknown(client: Client) -> None:
    database = FakeDatabase(similar={"3": [("4", 0.9), ("5", 0.8)]})
    http = client(models=FakeModels(), database=database)
    body = http.get("/v1/items/3/similar").json()
    assert body["source"] == "offline" and [i["item_id"] for i in body["items"]] == ["4", "5"]
    response = http.get("/v1/items/999/similar")
    assert response.status_code == 404 and "999" in response.json()["detail"]


def test_database_down_at_request_time_degrades_to_a_fallback(client: Client) -> None:
    database = FakeDatabase()
    http = client(models=FakeModels(make_artifact(version=3)), database=database)
    database.down = True  # popularity was loaded at start; now the database goes away
    # u1 is known to the model but has no offline set on the topic: the table is asked.
    response = http.get("/v1/users/u1/recommendations")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "online" and body["degraded"] == ["offline: database unavailable"]
    assert "offline" in database.calls
    database.down = False
    database.offline_rows["u1"] = [RecommendedItem("4", 1.0, None)]
    body = http.get("/v1/users/u1/recommendations").json()
    assert body["source"] == "offline" and body["items"][0]["item_id"] == "4"
    assert body["degraded"] == []
    similar = http.get("/v1/items/3/similar")
    assert similar.status_code == 200


def test_database_down_from_the_start_still_answers_from_the_model(client: Client) -> None:
    http = client(database=FakeDatabase(down=True))
    body = http.get("/v1/users/stranger/recommendations", params={"k": 3}).json()
    assert body["source"] == "fallback" and [i["item_id"] for i in body["items"]] == ["1", "2", "3"]
    assert http.get("/ready").status_code == 200  # the model is a fallback


def test_ready_only_once_a_model_or_popularity_is_loaded(client: Client) -> None:
    models = FakeModels()
    http = client(models=models)
    response = http.get("/ready")
    assert response.status_code == 503 and response.json()["ready"] is False
    models.publish(make_artifact(version=1))
    assert http.get("/ready").json() == {
        "ready": True,
        "model_version": 1,
        "popularity_loaded": False,
        "recommendations": {"caught_up": True, "users": 0},
        "data_error": None,
    }
    assert client(models=FakeModels(), database=FakeDatabase()).get("/ready").status_code == 200
    assert http.get("/health").json() == {"status": "ok"}


def test_events_are_produced_validated_and_remembered(client: Client) -> None:
    producer = FakeProducer()
    http = client(producer=producer, database=FakeDatabase())
    response = http.post("/v1/events", json=[view(item="15"), view(item="12")])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2 and body["by_type"] == {"view": 2}
    assert [uuid.UUID(i) for i in body["event_ids"]]
    assert [(s, r["item_id"]) for s, r in producer.sent] == [
        ("ViewEvent", "15"),
        ("ViewEvent", "12"),
    ]
    assert "type" not in producer.sent[0][1] and producer.sent[0][1]["ts"] > 0
    answer = http.get("/v1/users/42/recommendations", params={"k": 3}).json()
    assert answer["source"] == "online", "the replica reacts to the events it was sent"
    assert answer["items"][0]["reason"] in (
        "because you watched Movie 12",
        "because you watched Movie 15",
    )
    single = http.post("/v1/events", json=view(user="7"))
    assert single.status_code == 202 and single.json()["accepted"] == 1


def test_an_invalid_event_rejects_the_batch_with_per_event_reasons(client: Client) -> None:
    producer = FakeProducer()
    http = client(producer=producer)
    bad_progress = view(progress=1.5)
    missing = view()
    del missing["item_id"]
    batch = [view(), bad_progress, missing, {"type": "rate"}, "text"]
    response = http.post("/v1/events", json=batch)
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 0 and producer.sent == []
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert reasons == {1: "invalid-value", 2: "missing-field", 3: "unknown-type", 4: "wrong-type"}
    assert "progress" in body["rejected"][0]["message"]
    assert http.post("/v1/events", content=b"{not json").status_code == 422


def test_write_endpoints_require_the_configured_token(client: Client) -> None:
    producer = FakeProducer()
    http = client(producer=producer, api_token="s3cret")
    assert http.post("/v1/events", json=view()).status_code == 401
    wrong = http.post("/v1/events", json=view(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    ok = http.post("/v1/events", json=view(), headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 202 and len(producer.sent) == 1
    assert http.get("/v1/users/42/recommendations").status_code == 200, "reads stay open"


def test_events_without_a_broker_answer_503(client: Client) -> None:
    assert client().post("/v1/events", json=view()).status_code == 503


def test_current_model_and_refusals(client: Client) -> None:
    models = FakeModels(make_artifact(version=3))
    http = client(models=models)
    models.refuse(4, "model v4 refused: chunk 0 of 1 sha256 mismatch")
    body = http.get("/v1/models/current").json()
    assert body["loaded"] and body["version"] == 3 and body["items"] == 20 and body["dim"] == 4
    assert body["metrics"] == {"precision@10": pytest.approx(0.2)}
    assert body["refusals"][0]["version"] == 4 and "sha256" in body["refusals"][0]["reason"]
    empty = client(models=FakeModels()).get("/v1/models/current").json()
    assert empty == {"loaded": False, "version": 0, "refusals": []}


def test_metrics_expose_latency_per_endpoint_and_source_version_and_fallbacks(
    client: Client,
) -> None:
    models = FakeModels(make_artifact(version=3))
    http = client(models=models, sets=FakeRecs(recs("42", ["7"])), database=FakeDatabase())
    http.get("/v1/users/42/recommendations")
    http.get("/v1/users/someone/recommendations")
    models.refuse(9, "bad")
    text = http.get("/metrics").text
    assert (
        'nearline_serving_request_seconds_count{endpoint="recommendations",source="nearline"} 1.0'
        in text
    )
    assert (
        'nearline_serving_request_seconds_count{endpoint="recommendations",source="trending"} 1.0'
        in text
    )
    assert "nearline_serving_model_version 3.0" in text
    assert 'nearline_serving_fallbacks_total{source="trending"} 1.0' in text
    assert "nearline_serving_model_refusals_total 1.0" in text
    assert "nearline_serving_recommendation_sets 1.0" in text


def test_openapi_documents_every_endpoint(client: Client) -> None:
    http = client()
    paths = set(http.get("/openapi.json").json()["paths"])
    assert {
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/events",
        "/v1/models/current",
        "/health",
        "/ready",
        "/metrics",
    } <= paths
    assert http.get("/docs").status_code == 200


def test_the_lifespan_stops_the_sources(client: Client) -> None:
    models = FakeModels()
    producer = FakeProducer()
    http = client(models=models, producer=producer)
    http.__exit__(None, None, None)
    assert models.stopped and producer.flushed
