"""Settings of the development stack (``NEARLINE_*`` variables), read once at start-up.

Example::

    >>> from deploy.settings import StackSettings
    >>> StackSettings(kafka_port=29092).kafka_bootstrap
    '127.0.0.1:29092'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_ROOT = Path(__file__).resolve().parents[1]


def _default_state_dir() -> Path:
    # In a source checkout the state sits beside the code in a git-ignored folder, so that
    # `git clean -fdX` resets it; an installed package keeps it in the user's state folder.
    if (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / ".nearline"
    return Path.home() / ".local" / "state" / "nearline"


class StackSettings(BaseSettings):
    """Ports, folders and limits of the local Kafka and PostgreSQL."""

    model_config = SettingsConfigDict(env_prefix="NEARLINE_", extra="ignore")

    state_dir: Path = Field(default_factory=_default_state_dir)
    # 9092/9093 are left alone on purpose: a developer often has another Kafka there.
    kafka_port: int = Field(19092, ge=1024, le=65535)
    kafka_controller_port: int = Field(19093, ge=1024, le=65535)
    kafka_heap: str = Field("512m", pattern=r"^\d+[kmg]$")
    # None picks 15432 when it is free, else any free port; the choice is recorded and reused.
    pg_port: int | None = Field(None, ge=1024, le=65535)
    startup_timeout_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackSettings:
        if self.kafka_port == self.kafka_controller_port:
            raise ValueError("NEARLINE_KAFKA_PORT and NEARLINE_KAFKA_CONTROLLER_PORT must differ")
        return self

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"
