"""The online computation: candidates in order, business rules, context re-rank, reasons.

Steps (:data:`serving.candidates.STEPS`): (1) the user's nearline set, while it is their
freshest; (2) an online fold-in of the user's recent items (``?recent=`` and events POSTed
to this replica), blended with their trained vector when the model knows them; (3) the
offline top-N (from the topic; from PostgreSQL when the request looked it up); (4) a user
the model was trained on, scored with their trained vector; (5) trending from the event
store; (6) the model's item biases. The first step with items is the answer's source; when
the rules leave it short of ``k``, later steps fill the rest, each item keeping its own
source and reason. Nothing here does I/O, so it never fails on a broker or a database.

Example::

    recommender = Recommender(ModelSlot(), RecommendationStore(), DataSlot(), RecentItems())
    answer = recommender.recommend(Query(user_id="42", k=10))
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import RecommendedItem
from serving.answers import Answer, Pick, Query
from serving.candidates import STEPS, Inputs
from serving.item_data import DataSlot
from serving.recent_items import RecentItems
from serving.recommendation_store import RecommendationStore
from serving.rules import Rules, rerank_for_device
from serving.served_model import ModelSlot


class Recommender:
    """Answers :class:`Query` objects from the in-memory model, sets, data and signals."""

    def __init__(
        self,
        models: ModelSlot,
        store: RecommendationStore,
        data: DataSlot,
        signals: RecentItems,
        *,
        device_weight: float = 0.2,
    ) -> None:
        self.models, self.store, self.data, self.signals = models, store, data, signals
        self.device_weight = device_weight

    def recent(self, query: Query) -> tuple[str, ...]:
        """The request's recent items, then this replica's memory of the user, newest first."""
        remembered = self.signals.get(query.user_id)
        if not query.recent:
            return remembered
        return tuple(dict.fromkeys((*query.recent, *remembered)))

    def wants_offline_rows(self, query: Query, *, database: bool) -> bool:
        """Whether reading the user's offline list from PostgreSQL could change the answer.

        Only when no earlier step applies and the topic cannot stand in for the table: the
        offline job writes both, so once the topic is read to its end it holds every set
        the table has, except for users whose set compaction replaced by a nearline one.
        """
        user = query.user_id
        if not database or self.store.has_any(user) or self.recent(query):
            return False
        model = self.models.current
        known = model is not None and user in model.artifact.user_row
        return known or not self.store.caught_up

    def recommend(
        self,
        query: Query,
        offline_rows: Sequence[RecommendedItem] | None = None,
        degraded: Sequence[str] = (),
    ) -> Answer:
        model, data = self.models.current, self.data.current  # once: a swap cannot split us
        recent = self.recent(query)
        rules = Rules(query.exclude | frozenset(recent), query.genre, data)
        reranking = bool(query.device and query.device in data.device_share)
        # Re-ranking needs room to move: collect twice k when the device has data.
        want = query.k * 2 if reranking and self.device_weight > 0 else query.k
        inputs = Inputs(query, model, data, self.store, recent, rules, want, offline_rows)
        picks: list[Pick] = []
        taken: set[str] = set()
        primary: tuple[str, int] | None = None
        for step in STEPS:
            found = step(inputs)
            if found is None:
                continue
            before = len(picks)
            for pick in found.picks:
                if pick.item_id not in taken and rules.allows(pick.item_id):
                    picks.append(pick)
                    taken.add(pick.item_id)
                    if len(picks) >= want:
                        break
            if primary is None and len(picks) > before:
                primary = (found.source, found.model_version)
            if len(picks) >= want:
                break
        if reranking:
            picks = rerank_for_device(picks, query.device, data, self.device_weight)
        source, version = primary or ("fallback", 0)
        return Answer(
            user_id=query.user_id,
            items=tuple(picks[: query.k]),
            source=source,
            model_version=version,
            serving_model_version=0 if model is None else model.version,
            degraded=tuple(degraded),
        )
