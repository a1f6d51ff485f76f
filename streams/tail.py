"""``nearline recs tail``: print the ``recommendations`` topic in readable form.

Every partition is read (no consumer group, nothing committed), from the start or from now
on, and each set is printed as a header line and one line per item::

    alice  nearline  model v3  2024-05-01T12:00:00.123Z  trigger 1b2c...  cluster 4
       1. i50    3.214  because you watched i172

Example::

    tail(user="alice", from_beginning=True, limit=5)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.errors import SchemaError
from schemas.events import RecommendationSet
from schemas.settings import KafkaSettings, TopicSettings, load


def describe(recs: RecommendationSet) -> list[str]:
    """The lines printed for one set."""
    when = datetime.fromtimestamp(recs.computed_at / 1000, UTC).isoformat(timespec="milliseconds")
    head = [
        recs.user_id,
        recs.source,
        f"model v{recs.model_version}" if recs.model_version else "no model",
        when.replace("+00:00", "Z"),
        f"trigger {recs.trigger_event_id or '-'}",
    ]
    if recs.cluster is not None:
        head.append(f"cluster {recs.cluster}")
    lines = ["  ".join(head)]
    width = max((len(i.item_id) for i in recs.items), default=0)
    for rank, item in enumerate(recs.items, 1):
        reason = f"  {item.reason}" if item.reason else ""
        lines.append(f"  {rank:>3}. {item.item_id:<{width}}  {item.score:>9.4f}{reason}")
    if not recs.items:
        lines.append("       (no items)")
    return lines


def tail(
    user: str | None,
    from_beginning: bool,
    limit: int | None,
    out: Callable[[str], object] = print,
    *,
    kafka: KafkaSettings | None = None,
    catalogue: Catalogue | None = None,
    idle_timeout: float | None = None,
) -> int:
    """Print sets (only ``user``'s, if given) until ``limit`` were printed, ``idle_timeout``
    seconds pass without a message, or Ctrl-C. Returns how many were printed."""
    kafka = kafka or load(KafkaSettings)
    catalogue = catalogue or Catalogue(load(TopicSettings).topic_prefix)
    topic = catalogue.topic("recommendations")
    consumer = Consumer(
        {**kafka.client_config(), "group.id": "nearline-recs-tail", "enable.auto.commit": False}
    )
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic.name, p, start) for p in range(topic.partitions)])
    codec, printed, last = default_codec(), 0, time.monotonic()
    try:
        while limit is None or printed < limit:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    break
                continue
            last = time.monotonic()
            if (user is not None and msg.key() != user.encode()) or msg.value() is None:
                continue  # another user's set, or a tombstone
            try:
                record = codec.decode(RecommendationSet.SCHEMA, msg.value())
                recs = RecommendationSet.from_dict(record)
            except SchemaError as exc:
                out(f"{topic.name}[{msg.partition()}]@{msg.offset()}: unreadable set ({exc})")
                continue
            for line in describe(recs):
                out(line)
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return printed
