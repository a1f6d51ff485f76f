"""Settings of the HTTP server, read once from ``NEARLINE_SERVING_*`` variables.

The topic prefix and the database schema are deployment-wide, so they come from the same
variables every role reads (``NEARLINE_TOPIC_PREFIX``, ``NEARLINE_DB_SCHEMA``); in code they
can be passed by field name.

Example::

    from schemas.settings import load

    settings = load(ServingSettings)                   # from the environment, one-line errors
    settings = ServingSettings(port=0, api_token="s3cret", topic_prefix="t1.")
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    """How the online layer listens, answers and refreshes (``NEARLINE_SERVING_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="NEARLINE_SERVING_", extra="forbid", validate_by_name=True
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port; 0 picks a free one.")
    workers: int = Field(
        default=1, ge=1, le=64, description="uvicorn worker processes (each a full replica)."
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token required by write endpoints; unset: open."
    )
    default_k: int = Field(default=10, ge=1, le=1000, description="Items when ?k= is absent.")
    max_k: int = Field(default=100, ge=1, le=1000, description="Largest ?k= accepted.")
    max_events_per_request: int = Field(default=1000, ge=1, le=100_000)
    max_pending_events: int = Field(
        default=100_000,
        ge=1,
        description="Events queued for the broker beyond which POST /v1/events answers 503.",
    )
    recent_items: int = Field(
        default=20, ge=1, le=1000, description="Recent items kept per user from POSTed events."
    )
    recent_users: int = Field(
        default=100_000, ge=1, description="Users whose recent items are kept (least recent go)."
    )
    data_refresh_s: float = Field(
        default=300.0, gt=0, description="Seconds between reloads of popularity and item data."
    )
    trending_window_days: float = Field(
        default=7.0, gt=0, description="Popularity counts views this long before the newest."
    )
    device_weight: float = Field(
        default=0.2, ge=0, le=1, description="How much per-device popularity re-ranks a list."
    )
    db_timeout_ms: int = Field(
        default=200, ge=1, description="Statement timeout of request-time database lookups."
    )
    log_level: str = Field(default="info", pattern=r"^(critical|error|warning|info|debug)$")
    access_log: bool = Field(
        default=False,
        description="uvicorn's access log: a line per request, costing more than the request.",
    )
    loop: str = Field(
        default="uvloop",
        pattern=r"^(uvloop|asyncio|auto)$",
        description="uvicorn's event loop (uvloop: about twice the requests/s of asyncio).",
    )
    http: str = Field(
        default="httptools",
        pattern=r"^(httptools|h11|auto)$",
        description="uvicorn's HTTP/1.1 parser (httptools: C; h11: pure Python).",
    )
    direct: bool = Field(
        default=True,
        description="With httptools, answer a user's recommendations and /health inside "
        "uvicorn's protocol, without an ASGI task (serving.direct_http); the same bytes. "
        "Off while NEARLINE_SERVING_OPENTELEMETRY is on, so that every request is traced.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry (spans, metrics and logs for the globally "
        "configured providers). Off: FastAPI skips its per-request check for providers.",
    )
    topic_prefix: str = Field(
        default="", validation_alias="NEARLINE_TOPIC_PREFIX", pattern=r"^[A-Za-z0-9._-]{0,200}$"
    )
    db_schema: str | None = Field(
        default=None, validation_alias="NEARLINE_DB_SCHEMA", pattern=r"^[a-z_][a-z0-9_]{0,62}$"
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> ServingSettings:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) exceeds max_k ({self.max_k})")
        return self
