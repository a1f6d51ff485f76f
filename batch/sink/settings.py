"""Settings of the sink, read once from ``NEARLINE_SINK_*`` variables.

The topic prefix and the database schema are deployment-wide, so they are read from the
same variables every role reads (``NEARLINE_TOPIC_PREFIX``, ``NEARLINE_DB_SCHEMA``); in code
they can be passed by field name.

Example::

    from schemas.settings import load

    settings = load(SinkSettings)                       # from the environment
    settings = SinkSettings(topic_prefix="t1.", db_schema="t1", stop_when_idle_s=5)
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SinkSettings(BaseSettings):
    """How the sink consumes and writes (``NEARLINE_SINK_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="NEARLINE_SINK_", extra="forbid", validate_by_name=True
    )

    group_id: str = Field(
        default="nearline-sink", min_length=1, description="Kafka consumer group."
    )
    topic_prefix: str = Field(
        default="", validation_alias="NEARLINE_TOPIC_PREFIX", pattern=r"^[A-Za-z0-9._-]{0,200}$"
    )
    db_schema: str | None = Field(
        default=None, validation_alias="NEARLINE_DB_SCHEMA", pattern=r"^[a-z_][a-z0-9_]{0,62}$"
    )
    batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Most messages written per transaction."
    )
    poll_timeout_s: float = Field(
        default=1.0, gt=0, le=60, description="How long one consume call waits to fill a batch."
    )
    min_backoff_s: float = Field(
        default=0.5, gt=0, description="First wait before retrying a write."
    )
    max_backoff_s: float = Field(
        default=10.0, gt=0, description="Longest wait between write retries."
    )
    dlq_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long one attempt waits for the broker to take dead letters.",
    )
    progress_interval_s: float = Field(
        default=10.0, gt=0, description="Seconds between progress log lines."
    )
    stop_when_idle_s: float | None = Field(
        default=None,
        gt=0,
        description="Stop once no message arrived for this long (caught up); unset runs forever.",
    )
