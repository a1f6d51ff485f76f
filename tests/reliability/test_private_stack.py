"""The private stack itself: a broker restart and a PostgreSQL stop/start both come back."""

from __future__ import annotations

import pytest
from private_stack import PrivateStack

from schemas.connectivity import broker_metadata, database_version
from schemas.errors import DatabaseUnavailable


def test_the_private_stack_restarts_its_services(private_stack: PrivateStack) -> None:
    config = {"bootstrap.servers": private_stack.bootstrap}
    before = broker_metadata(config).cluster_id
    private_stack.restart_kafka()
    assert broker_metadata(config).cluster_id == before
    private_stack.stop_postgres()
    with pytest.raises(DatabaseUnavailable):
        database_version(private_stack.database_url, timeout=3)
    private_stack.start_postgres()
    assert database_version(private_stack.database_url, timeout=10)
