"""The worker's three changelog-backed tables.

- ``user_state``: user_id (bytes) -> :class:`~streams.state.UserState` as compact JSON bytes.
  Changelog ``<group>-user_state-changelog``.
- ``trending``: ``"p<partition>"`` -> that partition's
  :class:`~streams.trending.DecayedCounts` (the live object; JSON on the changelog).
- ``recommendations``: user_id (bytes) -> the latest RecommendationSet (Avro bytes). Its
  changelog *is* the catalogue's compacted ``recommendations`` topic, so keeping the latest
  set and publishing it are one write, and the two can never disagree; on start the worker
  reads back the sets of its partitions from that topic.

All live in memory (``memory://``) and are rebuilt from their changelogs at start. The
trending table is written the Faust way (``table[key] = value``, during an event of its
partition); the other two through :class:`KeyedTable` and :mod:`streams.output`, once a
user's burst is over.

Example::

    tables = Tables.declare(app, catalogue)
    tables.latest.topic         # the catalogue's recommendations topic
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.serializers.codecs import Codec
from faust.types import TableT

from schemas.catalogue import EVENT_PARTITIONS, Catalogue
from streams.trending import DecayedCounts


class CountsCodec(Codec):
    """Faust codec of a :class:`DecayedCounts` (JSON bytes on the changelog)."""

    def _dumps(self, s: Any) -> bytes:
        data: bytes = s.to_bytes()
        return data

    def _loads(self, s: bytes) -> Any:
        return DecayedCounts.from_bytes(s)


class KeyedTable:
    """A bytes -> bytes table whose changelog the worker writes itself.

    The worker produces its writes with its own producer (:mod:`streams.output`), naming
    the partition (the one the user's events come from); Faust still reads the changelog
    back into the table at start and after a rebalance. :meth:`remember` updates the
    local copy, as ``Table.__setitem__`` would.
    """

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table
        self._topic: str | None = None

    @property
    def topic(self) -> str:
        if self._topic is None:  # fixed once the app is configured; Faust derives it each call
            self._topic = self.table.changelog_topic.get_topic_name()
        return self._topic

    def remember(self, key: bytes, value: bytes) -> None:
        self.table.data[key] = value

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.data.get(key)
        return value


@dataclass(frozen=True, slots=True)
class Tables:
    states: KeyedTable
    trending: TableT[str, DecayedCounts]
    latest: KeyedTable

    @classmethod
    def declare(cls, app: faust.App, catalogue: Catalogue) -> Tables:
        # Faust picks a table's serializers from its types: bytes -> raw, else JSON.
        states = app.Table(
            "user_state", partitions=EVENT_PARTITIONS, key_type=bytes, value_type=bytes
        )
        # Faust derives a table's serializers from its types, and would read the changelog
        # back as plain JSON; both directions must use the codec, so the changelog topic is
        # declared here and the table's own serializer is set to match.
        counts = app.topic(
            f"{app.conf.id}-trending-changelog",
            partitions=EVENT_PARTITIONS,
            key_type=str,
            key_serializer="json",
            value_serializer=CountsCodec(),
            compacting=True,
            internal=True,
            acks=False,
            allow_empty=True,
        )
        trending = app.Table(
            "trending", partitions=EVENT_PARTITIONS, key_type=str, changelog_topic=counts
        )
        cast(faust.Table[str, DecayedCounts], trending).value_serializer = CountsCodec()
        topic = catalogue.topic("recommendations")
        changelog = app.topic(
            topic.name,
            partitions=topic.partitions,
            key_type=bytes,
            value_type=bytes,
            compacting=True,
            key_serializer="raw",
            value_serializer="raw",
        )
        latest = app.Table(
            "recommendations",
            partitions=topic.partitions,
            changelog_topic=changelog,
            key_type=bytes,
            value_type=bytes,
        )
        return cls(KeyedTable(states), trending, KeyedTable(latest))
