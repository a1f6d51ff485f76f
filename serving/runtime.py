"""Everything one app instance holds in memory, in one object the routes reach through
``request.app.state.runtime``.

Example::

    runtime = Runtime.build(ServingSettings())
    runtime.models.swap(artifact)
    runtime.recommender.recommend(Query(user_id="42", k=10))
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.event_intake import EventIntake
from serving.item_data import DataSlot
from serving.metrics import ServingMetrics
from serving.recent_items import RecentItems
from serving.recommendation_store import RecommendationStore
from serving.recommender import Recommender
from serving.served_model import ModelSlot
from serving.settings import ServingSettings
from serving.sources import Database


@dataclass(slots=True)
class Runtime:
    settings: ServingSettings
    models: ModelSlot
    store: RecommendationStore
    data: DataSlot
    signals: RecentItems
    recommender: Recommender
    metrics: ServingMetrics
    database: Database | None = None
    intake: EventIntake | None = None
    """None when the app has no producer (no broker configured): writes answer 503."""

    @classmethod
    def build(cls, settings: ServingSettings, database: Database | None = None) -> Runtime:
        models, store, data = ModelSlot(), RecommendationStore(), DataSlot()
        signals = RecentItems(settings.recent_items, settings.recent_users)
        recommender = Recommender(
            models, store, data, signals, device_weight=settings.device_weight
        )
        metrics = ServingMetrics()
        metrics.recommendation_sets.set_function(lambda: len(store))
        return cls(settings, models, store, data, signals, recommender, metrics, database)

    @property
    def ready(self) -> bool:
        """A model or a fallback (popularity data) is loaded."""
        return self.models.current is not None or bool(self.data.current.popular)
