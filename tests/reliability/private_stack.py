"""A private Kafka broker and PostgreSQL server, started exactly as ``nearline dev up`` starts
them but in a state folder of their own and on free ports, so that stopping them disturbs no
other test, pytest session or developer's stack."""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy import stack
from deploy.broker import BrokerPaths
from deploy.processes import free_port
from deploy.settings import StackSettings
from deploy.state import StackState


class PrivateStack:
    """One Kafka broker and one PostgreSQL server that only this test module uses."""

    def __init__(self, state_dir: Path) -> None:
        self.settings = StackSettings(
            state_dir=state_dir,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            pg_port=free_port(),
        )
        _share_jars(state_dir)
        try:
            endpoints = stack.up(self.settings, log=lambda line: None)
        except BaseException:
            self.close()  # whatever did start (the broker, say) must not outlive the test
            raise
        assert endpoints.kafka_bootstrap and endpoints.database_url
        self.bootstrap: str = endpoints.kafka_bootstrap
        self.database_url: str = endpoints.database_url

    def stop_kafka(self) -> None:
        """A graceful broker stop (SIGTERM), as an operator's restart does."""
        stack.down(self.settings, services=("kafka",), log=lambda line: None)

    def start_kafka(self) -> None:
        stack.up(self.settings, postgres=False, log=lambda line: None)

    def restart_kafka(self) -> None:
        self.stop_kafka()
        self.start_kafka()

    def stop_postgres(self) -> None:
        stack.down(self.settings, services=("postgres",), log=lambda line: None)

    def start_postgres(self) -> None:
        stack.up(self.settings, kafka=False, log=lambda line: None)

    def close(self) -> None:
        """Stop both services and remove the cluster if it lives outside the state folder
        (as root it goes under /var/lib/nearline, about 46 MB a stack)."""
        stack.down(self.settings, log=lambda line: None)
        root = StackState(self.settings.state_dir).load().get("postgres", {}).get("root")
        if root and self.settings.state_dir not in Path(root).parents:
            shutil.rmtree(root, ignore_errors=True)


def _share_jars(state_dir: Path) -> None:
    """Copy the broker jars the default stack already fetched (with their completion
    marker), so that each private stack skips a Maven run; without them it fetches its own."""
    source = BrokerPaths(StackSettings().state_dir / "kafka").jars
    if (source / ".complete").is_file():
        shutil.copytree(source, BrokerPaths(state_dir / "kafka").jars)
