"""Errors of the online layer; each knows the HTTP status it answers with.

The app turns every :class:`ServingError` into ``{"detail": message, **extra}`` with its
status, so a handler only raises, e.g. ``raise InvalidParameter("k: must be between 1 and
100, got 500")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.errors import NearlineError


class ServingError(NearlineError):
    """Root of the errors a request can end with; ``status`` is the HTTP status."""

    status = 500

    def __init__(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.extra = dict(extra or {})


class InvalidParameter(ServingError):
    """A query parameter or body is well-formed JSON/HTTP but not acceptable."""

    status = 422


class Unauthorized(ServingError):
    """A write endpoint was called without the configured bearer token."""

    status = 401


class NotFound(ServingError):
    """The path names something that does not exist (an item unknown to every source)."""

    status = 404


class Unavailable(ServingError):
    """A dependency is down and the request cannot be degraded (only writes: reads fall back)."""

    status = 503
