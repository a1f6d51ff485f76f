"""A private Kafka broker and PostgreSQL server for the fault-injection suite.

The reliability tests stop and restart services. They do it on a stack of their own
(own state folder, own free ports), started exactly as ``nearline dev up`` starts one, so
that a restart never disturbs another test, another pytest session or a developer's stack.

Example::

    def test_something(private_stack: PrivateStack) -> None:
        private_stack.restart_kafka()
        private_stack.stop_postgres(); ...; private_stack.start_postgres()
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The worker and serving harnesses of the integration suite are shared with this one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from private_stack import PrivateStack  # noqa: E402


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    """A stack for one test module; stopped at the module's end whatever happened."""
    private = PrivateStack(tmp_path_factory.mktemp("stack"))
    try:
        yield private
    finally:
        private.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.integration)
