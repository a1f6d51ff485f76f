"""Connection settings shared by every role: the Kafka cluster and the PostgreSQL database.

These are the only two settings every process needs, so they live in the shared layer. Each
role adds its own settings class (``streams.settings``, ``batch.settings``, ...) on top.
Values come from the environment; nothing here connects to anything.

Example::

    >>> from schemas.settings import KafkaSettings
    >>> KafkaSettings(bootstrap_servers="127.0.0.1:19092").client_config()["bootstrap.servers"]
    '127.0.0.1:19092'
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class KafkaSettings(BaseSettings):
    """Where the Kafka cluster is and how to authenticate (``KAFKA_*`` variables)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="forbid")

    bootstrap_servers: str = Field(
        DEFAULT_BOOTSTRAP, description="Comma-separated host:port list of brokers."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts_have_ports(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if not hosts or any(":" not in h or not h.rsplit(":", 1)[1].isdigit() for h in hosts):
            raise ValueError("expected host:port[,host:port...], for example 127.0.0.1:19092")
        return ",".join(hosts)

    def client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) configuration for these settings."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            config["ssl.ca.location"] = self.ssl_cafile
        return config


class DatabaseSettings(BaseSettings):
    """The PostgreSQL database (``DATABASE_URL``, an SQLAlchemy URL).

    TLS options ride in the URL's query string, e.g. ``?sslmode=verify-full&sslrootcert=...``.
    """

    model_config = SettingsConfigDict(extra="forbid")

    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    db_schema: str | None = Field(
        None,
        validation_alias="NEARLINE_DB_SCHEMA",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema for nearline's tables; unset means the default (public).",
    )

    def url(self) -> str:
        """The URL, or a :class:`ConfigError` that says how to get one."""
        if self.database_url is None:
            raise ConfigError(
                "DATABASE_URL is not set; run `nearline dev up` then "
                '`eval "$(nearline dev env)"`, or point it at your PostgreSQL'
            )
        url = self.database_url.get_secret_value()
        return normalise_database_url(url)


def normalise_database_url(url: str) -> str:
    """Map libpq-style URLs onto the driver we ship (psycopg2).

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which we do not install, and
    ``postgres://`` (the libpq and Heroku spelling) to nothing at all.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError("DATABASE_URL must look like postgresql://user:password@host:port/db")
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg2"
    if not scheme.startswith("postgresql"):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, not {scheme}://")
    return f"{scheme}://{rest}"


def load(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build a settings object, turning validation errors into one :class:`ConfigError` line.

    The line names the environment variable, its problem and the value's shape, e.g.
    ``NEARLINE_KAFKA_PORT: Input should be less than or equal to 65535``.
    """
    from pydantic import ValidationError

    _reject_unknown_variables(cls)
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            info = cls.model_fields.get(field)
            alias = info.validation_alias if info is not None else None
            name = alias if isinstance(alias, str) else (prefix + field).upper()
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc


ROLE_PREFIXES = ("NEARLINE_WORKER_", "NEARLINE_SERVING_", "NEARLINE_SINK_", "NEARLINE_BATCH_")
"""Prefixes that belong to one settings class each: a variable under one of them that the
class does not declare is a typo, and is refused rather than silently ignored."""


def _reject_unknown_variables(cls: type[BaseSettings]) -> None:
    import difflib
    import os

    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    if prefix not in ROLE_PREFIXES:
        return  # NEARLINE_ alone is shared by several classes; none can judge the others
    known = {
        (prefix + name).upper()
        for name, info in cls.model_fields.items()
        if info.validation_alias is None  # an aliased field is read under its alias only
    }
    unknown = sorted(
        k for k in os.environ if k.upper().startswith(prefix) and k.upper() not in known
    )
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.upper(), known, n=1)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise ConfigError(
            f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(hints)}; "
            f"the {prefix}* settings are: {', '.join(sorted(known))}"
        )


class TopicSettings(BaseSettings):
    """``NEARLINE_TOPIC_PREFIX``: prepended to every topic name, so that several deployments
    (or tests) can share one cluster."""

    model_config = SettingsConfigDict(env_prefix="NEARLINE_", extra="ignore")

    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,200}$")
