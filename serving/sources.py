"""Where the app's background inputs come from, as small interfaces tests can fake.

- a :class:`ModelSource` hands over verified models and refusals (the real one follows the
  ``models`` topic with :class:`~schemas.model_loader.ModelFollower`);
- a :class:`RecommendationsSource` fills the in-memory store (the real one reads the
  ``recommendations`` topic);
- a :class:`Database` gives item data and the batch tables (the real one is
  :class:`~serving.database_reader.DatabaseReader`).

Example::

    class FakeModels:
        def start(self, on_model, on_refused): on_model(artifact)
        def stop(self): pass

    app = create_app(settings, model_source=FakeModels(), recs_source=NoRecommendations())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from schemas.artifact import ModelArtifact
from schemas.catalogue import Catalogue
from schemas.events import RecommendedItem
from schemas.model_loader import ModelFollower
from schemas.settings import KafkaSettings
from serving.item_data import ItemData
from serving.recommendation_reader import RecommendationReader
from serving.recommendation_store import RecommendationStore

ModelHandler = Callable[[ModelArtifact], None]
RefusalHandler = Callable[[int | None, str], None]


class ModelSource(Protocol):
    def start(self, on_model: ModelHandler, on_refused: RefusalHandler) -> None: ...

    def stop(self) -> None: ...


class RecommendationsSource(Protocol):
    def start(self, store: RecommendationStore) -> None: ...

    def stop(self) -> None: ...


class Database(Protocol):
    def item_data(self) -> ItemData: ...

    def offline(self, user_id: str, limit: int) -> list[RecommendedItem]: ...

    def similar(self, item_id: str, limit: int) -> list[tuple[str, float]]: ...

    def dispose(self) -> None: ...


class TopicModelSource:
    """Follows the ``models`` topic; calls back on the follower's thread."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue) -> None:
        self._kafka, self._catalogue = kafka, catalogue
        self.follower: ModelFollower | None = None

    def start(self, on_model: ModelHandler, on_refused: RefusalHandler) -> None:
        self.follower = ModelFollower(self._kafka, self._catalogue, on_model, on_refused)
        self.follower.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()


class TopicRecommendationsSource:
    """Reads the ``recommendations`` topic into the store in a background thread."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue) -> None:
        self._kafka, self._catalogue = kafka, catalogue
        self.reader: RecommendationReader | None = None

    def start(self, store: RecommendationStore) -> None:
        self.reader = RecommendationReader(self._kafka, self._catalogue, store)
        self.reader.start()

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.stop()


class NoRecommendations:
    """No result sets (tests, or a replica run without a broker); the store counts as read."""

    def start(self, store: RecommendationStore) -> None:
        store.caught_up = True

    def stop(self) -> None:
        pass
