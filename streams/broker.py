"""Faust's broker options from the shared :class:`~schemas.settings.KafkaSettings`.

Example::

    faust.App("w", **broker_options(KafkaSettings()))
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from schemas.settings import KafkaSettings


def broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """``broker`` and, for SSL or SASL listeners, ``broker_credentials``."""
    urls = ";".join(f"kafka://{host}" for host in kafka.bootstrap_servers.split(","))
    options: dict[str, Any] = {"broker": urls}
    protocol = kafka.security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_cafile)
    if protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options
