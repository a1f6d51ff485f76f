"""Options of `nearline demo`, read once from ``NEARLINE_DEMO_*`` variables or the flags.

``--quick`` caps the live part, so that the whole demo ends well within two minutes; a value
given explicitly (flag or variable) always wins over the quick default.

Example::

    >>> from deploy.demo.settings import DemoSettings, with_quick
    >>> quick = with_quick(DemoSettings(users=5))
    >>> quick.live_events, quick.users, quick.rate
    (2000, 5, 200.0)
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DemoSettings(BaseSettings):
    """What the demo replays, how fast, and what it shows (``NEARLINE_DEMO_*``)."""

    model_config = SettingsConfigDict(env_prefix="NEARLINE_DEMO_", extra="forbid")

    history_share: float = Field(
        default=0.8, gt=0, lt=1, description="Share of ML-100K (in time order) replayed as history."
    )
    rate: float = Field(
        default=200.0,
        gt=0,
        le=100_000,
        description="Live events per second; one worker keeps up with ~400 on a quiet machine.",
    )
    live_events: int = Field(default=0, ge=0, description="Live events at most; 0 = all the rest.")
    users: int = Field(
        default=4, ge=0, le=20, description="Users shown before and after their events."
    )
    request_rate: float = Field(
        default=20.0,
        ge=0,
        le=1000,
        description="Steady HTTP requests per second during the live phase.",
    )
    startup_timeout_s: float = Field(
        default=120.0, gt=0, description="How long the worker and the server may take to be ready."
    )
    drain_timeout_s: float = Field(
        default=30.0, gt=0, description="How long to wait for the sets of the last live events."
    )
    keep: bool = Field(
        default=False, description="Keep the run's topics, schema and logs at the end."
    )


QUICK: dict[str, object] = {"live_events": 2000, "users": 3}
"""What ``--quick`` changes: 2,000 live events (10 s at the default rate), three users shown.
It keeps the rate: the worker keeps up with 300/s on a quiet machine, but not while other
work shares the two cores, and a lagging worker would make the latency the whole story."""


def with_quick(settings: DemoSettings) -> DemoSettings:
    """``settings`` with the quick defaults for every field not set explicitly."""
    update = {k: v for k, v in QUICK.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=update)
