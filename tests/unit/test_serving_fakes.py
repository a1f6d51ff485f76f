"""Fakes and builders shared by the serving tests (no tests here).

A synthetic model whose geometry makes answers predictable: items come in two groups
pointing in opposite directions, so an item's neighbours are its own group; item biases
decrease with the id, so the model's own popularity order is 1, 2, 3, ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from schemas.artifact import ModelArtifact
from schemas.events import RecommendationSet, RecommendedItem
from serving.item_data import ItemData
from serving.recommendation_store import RecommendationStore

GENRES = {"comedy": range(1, 11), "drama": range(11, 21)}


def make_artifact(
    version: int = 1, n_items: int = 20, dim: int = 4, seed: int = 0
) -> ModelArtifact:
    """Items "1".."n" (first half group A, second half group B), users "u1".."u5"."""
    rng = np.random.default_rng(seed + version)
    half = n_items // 2
    direction = np.zeros(dim, np.float32)
    direction[0] = 1.0
    items = rng.normal(0, 0.05, (n_items, dim)).astype(np.float32)
    items[:half] += direction
    items[half:] -= direction
    biases = np.linspace(0.5, 0.0, n_items, dtype=np.float32)
    users = np.stack([direction, -direction, direction, -direction, direction]).astype(np.float32)
    return ModelArtifact(
        version=version,
        item_ids=tuple(str(i) for i in range(1, n_items + 1)),
        item_embeddings=items,
        item_biases=biases,
        user_ids=tuple(f"u{i}" for i in range(1, 6)),
        user_embeddings=users,
        user_biases=np.zeros(5, np.float32),
        metrics={"precision@10": 0.2},
    )


def make_data(views: Mapping[str, int] | None = None, device: str = "web") -> ItemData:
    """Titles "Movie <id>", genres comedy (1-10) / drama (11-20), view counts (default:
    item 20 most viewed, then 19, ...)."""
    items = [
        (str(i), f"Movie {i}", [g.capitalize() for g, ids in GENRES.items() if i in ids])
        for i in range(1, 21)
    ]
    counts = views or {str(i): i * 10 for i in range(1, 21)}
    return ItemData.build(items, [(i, device, n) for i, n in counts.items()])


def recs(
    user: str, items: list[str], source: str = "nearline", at: int = 1000, version: int = 1
) -> RecommendationSet:
    return RecommendationSet(
        user_id=user,
        items=tuple(
            RecommendedItem(i, 1.0 - n / 100, f"{source} pick {i}") for n, i in enumerate(items)
        ),
        source=source,
        model_version=version,
        computed_at=at,
    )


class FakeModels:
    """A model source the test drives: ``publish`` and ``refuse`` call the app back."""

    def __init__(self, *initial: ModelArtifact) -> None:
        self.initial = initial
        self.on_model: Callable[[ModelArtifact], None] | None = None
        self.on_refused: Callable[[int | None, str], None] | None = None
        self.stopped = False

    def start(
        self,
        on_model: Callable[[ModelArtifact], None],
        on_refused: Callable[[int | None, str], None],
    ) -> None:
        self.on_model, self.on_refused = on_model, on_refused
        for artifact in self.initial:
            on_model(artifact)

    def publish(self, artifact: ModelArtifact) -> None:
        assert self.on_model is not None
        self.on_model(artifact)

    def refuse(self, version: int, reason: str) -> None:
        assert self.on_refused is not None
        self.on_refused(version, reason)

    def stop(self) -> None:
        self.stopped = True


class FakeRecs:
    def __init__(self, *sets: RecommendationSet) -> None:
        self.sets = sets
        self.store: RecommendationStore | None = None

    def start(self, store: RecommendationStore) -> None:
        self.store = store
        for s in self.sets:
            store.put(s)
        store.caught_up = True

    def stop(self) -> None:
        pass


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.flushed = False

    def send(self, schema: str, record: Mapping[str, Any], *, validate: bool = True) -> None:
        assert validate, "serving must produce with the topics' validation"
        self.sent.append((schema, dict(record)))

    def flush(self, timeout: float = 60.0) -> None:
        self.flushed = True


class FakeDatabase:
    """Item data and batch tables in memory; ``down=True`` makes every call fail."""

    def __init__(
        self,
        data: ItemData | None = None,
        offline: Mapping[str, list[RecommendedItem]] | None = None,
        similar: Mapping[str, list[tuple[str, float]]] | None = None,
        down: bool = False,
    ) -> None:
        self.data = data or make_data()
        self.offline_rows = dict(offline or {})
        self.similar_rows = dict(similar or {})
        self.down = down
        self.calls: list[str] = []

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise ConnectionError("connection refused (fake)")

    def item_data(self) -> ItemData:
        self._check("item_data")
        return self.data

    def offline(self, user_id: str, limit: int) -> list[RecommendedItem]:
        self._check("offline")
        return self.offline_rows.get(user_id, [])[:limit]

    def similar(self, item_id: str, limit: int) -> list[tuple[str, float]]:
        self._check("similar")
        return self.similar_rows.get(item_id, [])[:limit]

    def dispose(self) -> None:
        pass
