"""Settings of the stream worker, read once from ``NEARLINE_WORKER_*`` variables.

The topic prefix is deployment-wide, so it is read from ``NEARLINE_TOPIC_PREFIX`` like every
role reads it; in code it can be passed by field name. Kafka's address and credentials come
from the shared :class:`~schemas.settings.KafkaSettings`.

Example::

    from schemas.settings import load

    settings = load(StreamsSettings)                  # from the environment
    settings = StreamsSettings(app_id="w1", top_n=10, topic_prefix="t1.")
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S


class StreamsSettings(BaseSettings):
    """How the worker computes and where it keeps its state (``NEARLINE_WORKER_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="NEARLINE_WORKER_", extra="forbid", validate_by_name=True
    )

    app_id: str = Field(
        "nearline-worker",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="Faust app id: the consumer group and the prefix of its changelog topics "
        "(both also get NEARLINE_TOPIC_PREFIX in front).",
    )
    topic_prefix: str = Field(
        "", validation_alias="NEARLINE_TOPIC_PREFIX", pattern=r"^[A-Za-z0-9._-]{0,200}$"
    )
    top_n: int = Field(20, ge=1, le=500, description="Items per recommendation set.")
    recent_interactions: int = Field(
        50, ge=1, le=1000, description="Interactions kept per user (the fold-in's input)."
    )
    seen_items: int = Field(
        500, ge=1, le=10_000, description="Items remembered per user as seen (excluded)."
    )
    recent_event_ids: int = Field(
        64, ge=1, le=4096, description="Event ids remembered per user to drop re-sent events."
    )
    view_weight: float = Field(1.0, gt=0, description="Weight of a fully watched view.")
    click_weight: float = Field(0.5, gt=0, description="Weight of a click.")
    # 10, not 0.1: chosen on a validation split of ML-100K (docs/freshness.md). At 0.1 the
    # folded-in vector came out 4x longer than trained ones and swamped the item biases.
    fold_in_lambda: float = Field(10.0, gt=0, description="Ridge term of the fold-in.")
    blend_weight: float = Field(
        0.5, ge=0, le=1, description="Share of the offline user vector for users the model knows."
    )
    recency_half_life_s: float = Field(
        7 * DAY_S, gt=0, description="Event-time half-life of an interaction's weight."
    )
    trending_half_life_s: float = Field(
        HOUR_S, gt=0, description="Event-time half-life of trending counts."
    )
    trending_items: int = Field(
        1000, ge=10, le=100_000, description="Items kept per trending scope and partition."
    )
    trending_devices: int = Field(
        8, ge=0, le=64, description="Devices with their own trending list, per partition."
    )
    trending_snapshot_s: float = Field(
        5.0, gt=0, description="Seconds between writes of a partition's trending counts."
    )
    trending_refresh_s: float = Field(
        1.0, ge=0, description="Seconds a merged trending ranking is reused."
    )
    coalesce_idle_ms: float = Field(
        5.0,
        ge=0,
        description="A user's set is recomputed once no event of theirs came for this long.",
    )
    coalesce_max_ms: float = Field(
        25.0, ge=0, description="...or once their oldest uncomputed event is this old."
    )
    coalesce_max_events: int = Field(
        1000, ge=1, description="...or once this many of their events wait (1: every event)."
    )
    state_cache_users: int = Field(
        10_000, ge=0, description="Decoded states kept for the most recently active users."
    )
    model_wait_s: float = Field(
        30.0, ge=0, description="How long start-up waits to read the models topic to its end."
    )
    progress_s: float = Field(
        30.0, ge=0, description="Seconds between progress lines in the log (0: none)."
    )
    commit_interval_s: float = Field(2.8, gt=0, description="Seconds between offset commits.")
    session_timeout_s: float = Field(
        10.0,
        ge=6,
        le=300,
        description="How long the group waits for a silent worker before moving its "
        "partitions: the delay before a killed worker's partitions are served again.",
    )
    standby_replicas: int = Field(
        0, ge=0, le=3, description="Standby copies of each table partition on other workers."
    )
    web_enabled: bool = Field(False, description="Serve Faust's web views (stats, tables).")
    web_port: int = Field(6066, ge=1, le=65535)
    datadir: Path = Field(
        Path(".nearline/worker"), description="Faust's data folder (the tables live in memory)."
    )
    loglevel: Literal["debug", "info", "warn", "error"] = "info"

    @field_validator("coalesce_max_ms")
    @classmethod
    def _not_below_idle(cls, value: float, info: ValidationInfo) -> float:
        idle = info.data.get("coalesce_idle_ms")
        if idle is not None and value < idle:
            raise ValueError(f"must be at least NEARLINE_WORKER_COALESCE_IDLE_MS ({idle:g})")
        return value

    @property
    def group_id(self) -> str:
        """The Faust app id on the broker: consumer group and changelog topic prefix."""
        return self.topic_prefix + self.app_id
