"""The offline top-N per user, published on ``recommendations`` with source=offline.

Serving keeps the freshest set per user, so a nearline set computed after this one wins,
and this one wins over an older nearline set.

Example::

    sent = publish_offline_sets(kafka, catalogue, recs_frame, model_version=8)
"""

from __future__ import annotations

import pandas as pd
from confluent_kafka import Producer

from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.events import RecommendationSet, RecommendedItem, now_ms
from schemas.producer import PRODUCER_DEFAULTS, DeliveryError
from schemas.settings import KafkaSettings


def publish_offline_sets(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    recs: pd.DataFrame,
    *,
    model_version: int,
    clusters: dict[str, int] | None = None,
    timeout: float = 60.0,
) -> int:
    """One RecommendationSet per user in ``recs`` (user_id, rank, item_id, score, reason)."""
    topic = catalogue.topic("recommendations").name
    codec = default_codec()
    producer = Producer({**kafka.client_config(), **PRODUCER_DEFAULTS})
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    computed_at = now_ms()
    sent = 0
    for user_id, group in recs.sort_values(["user_id", "rank"]).groupby("user_id", sort=False):
        items = tuple(
            RecommendedItem(str(i), float(s), f"similar to {r}" if isinstance(r, str) else None)
            for i, s, r in zip(group["item_id"], group["score"], group["reason"], strict=True)
        )
        user = str(user_id)
        record = RecommendationSet(
            user_id=user,
            items=items,
            source="offline",
            model_version=model_version,
            computed_at=computed_at,
            cluster=(clusters or {}).get(user),
        )
        producer.produce(
            topic,
            codec.encode(RecommendationSet.SCHEMA, record.to_dict()),
            user.encode(),
            on_delivery=delivered,
        )
        sent += 1
        if sent % 500 == 0:
            producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining or failures:
        raise DeliveryError(
            f"offline recommendations: {remaining} unacknowledged, {len(failures)} failed"
            + (f"; first: {failures[0]}" if failures else "")
        )
    return sent
