"""The project's exception hierarchy.

Every error that nearline raises on purpose derives from :class:`NearlineError`, so a caller
(and the CLI, which turns these into one clear line) can catch the whole family at once.
Codec failures are re-raised as :class:`SchemaError` with ``raise ... from exc`` so the
original cause is kept for debugging while the message states the reason plainly.
"""


class NearlineError(Exception):
    """Root of every error nearline raises deliberately."""


class ConfigError(NearlineError):
    """A setting is missing or has a value nearline cannot use."""


class StackError(NearlineError):
    """The local development stack (Kafka, PostgreSQL) could not be started or reached."""


class BrokerUnavailable(NearlineError):
    """No Kafka broker answered at the configured bootstrap servers."""


class DatabaseUnavailable(NearlineError):
    """PostgreSQL could not be reached or refused the configured credentials."""


class SchemaError(NearlineError):
    """A message does not match its declared contract (bad bytes, unknown schema, wrong field).

    ``reason`` is a short machine-friendly code (for example ``unknown-fingerprint``) that
    dead-letter records carry, and ``str(exc)`` is the human-readable explanation.
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason
