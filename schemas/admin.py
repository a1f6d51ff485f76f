"""Creating the catalogue's topics on a cluster, idempotently.

Example::

    from schemas.admin import ensure_topics
    from schemas.catalogue import Catalogue
    from schemas.settings import KafkaSettings

    for name, outcome in ensure_topics(KafkaSettings(), Catalogue()):
        print(name, outcome)       # "created", or "exists" when already there
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from schemas.catalogue import Catalogue, Topic
from schemas.connectivity import broker_metadata
from schemas.errors import NearlineError
from schemas.settings import KafkaSettings


class TopicMismatch(NearlineError):
    """A topic exists with settings that differ from its declaration."""


def _new_topic(topic: Topic, replication: int) -> NewTopic:
    return NewTopic(
        topic.name,
        num_partitions=topic.partitions,
        replication_factor=replication,
        config=topic.config(),
    )


def wait_until_listed(admin: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Wait until the cluster's metadata lists every topic in ``names`` with a leader for
    each partition.

    CreateTopics returns once the controller has created a topic, but a broker's metadata
    cache may list it a moment later; a consumer that subscribes in between sees no
    partitions, and a producer fails with UNKNOWN_TOPIC_OR_PART.
    """
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        missing = [
            n
            for n in names
            if n not in topics
            or topics[n].error is not None
            or any(p.leader < 0 for p in topics[n].partitions.values())
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise NearlineError(f"topics not ready after {timeout:g} s: {', '.join(missing)}")
        time.sleep(0.1)


def wait_until_unlisted(admin: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Wait until the cluster's metadata lists none of ``names``: DeleteTopics returns once
    the controller has deleted them, and a broker sets their logs aside only when its own
    metadata drops them (stopped before that, it keeps the logs and loads them again)."""
    deadline = time.monotonic() + timeout
    while set(names) & set(admin.list_topics(timeout=timeout).topics):
        if time.monotonic() > deadline:
            raise NearlineError(f"topics still listed after {timeout:g} s")
        time.sleep(0.1)


def ensure_topics(
    kafka: KafkaSettings,
    catalogue: Catalogue | Sequence[Topic],
    *,
    replication: int | None = None,
    timeout: float = 30.0,
) -> list[tuple[str, str]]:
    """Create every catalogue topic (or every topic given) that is missing; check the
    partitions of those present.

    ``replication`` defaults to min(3, brokers in the cluster). Returns (name, outcome) pairs.
    An existing topic with fewer partitions than declared raises :class:`TopicMismatch`,
    since co-partitioning by user depends on it.
    """
    config = kafka.client_config()
    info = broker_metadata(config, timeout=timeout)
    replication = replication or min(3, info.brokers)
    admin = AdminClient(dict(config))
    existing = admin.list_topics(timeout=timeout).topics
    outcomes: list[tuple[str, str]] = []
    wanted = []
    for topic in catalogue:
        if topic.name in existing:
            have = len(existing[topic.name].partitions)
            if have != topic.partitions:
                raise TopicMismatch(
                    f"topic {topic.name} has {have} partitions but is declared with "
                    f"{topic.partitions}; event topics must be co-partitioned by user, so "
                    "recreate it (or use another NEARLINE topic prefix)"
                )
            outcomes.append((topic.name, "exists"))
        else:
            wanted.append(topic)
    if wanted:
        futures = admin.create_topics(
            [_new_topic(t, replication) for t in wanted],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for topic in wanted:
            try:
                futures[topic.name].result(timeout=timeout)
                outcomes.append((topic.name, "created"))
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine
                    outcomes.append((topic.name, "exists"))
                else:
                    raise NearlineError(
                        f"could not create topic {topic.name}: {error.str()}"
                    ) from exc
    wait_until_listed(admin, [name for name, _ in outcomes], timeout)
    order = {t.name: i for i, t in enumerate(catalogue)}  # a Catalogue iterates its topics
    return sorted(outcomes, key=lambda pair: order[pair[0]])
