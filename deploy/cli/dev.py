"""`nearline dev ...`: the local Kafka and PostgreSQL stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from deploy.settings import StackSettings

app = typer.Typer(no_args_is_help=True, help="The local Kafka and PostgreSQL stack.")


def _stack_settings() -> StackSettings:
    from deploy.settings import StackSettings
    from schemas.settings import load

    return load(StackSettings)


@app.command("up")
def dev_up() -> None:
    """Start Apache Kafka (KRaft) and, unless DATABASE_URL is set, PostgreSQL. Idempotent."""
    from deploy import stack
    from schemas.connectivity import database_version
    from schemas.settings import DatabaseSettings, load

    settings = _stack_settings()
    external = load(DatabaseSettings).database_url
    if external is not None:  # check it first: a wrong URL should not leave a broker behind
        version = database_version(external.get_secret_value())
    endpoints = stack.up(settings, postgres=external is None, log=_err)
    if external is not None:
        _err(f"postgres   using DATABASE_URL (PostgreSQL {version})")
    _err(f'ready: eval "$(nearline dev env)"  # Kafka at {endpoints.kafka_bootstrap}')
    if endpoints.database_url:
        typer.echo(f"DATABASE_URL={endpoints.database_url}")


@app.command("fetch")
def dev_fetch() -> None:
    """Fetch the Apache Kafka broker's jars with Maven (once; `up` also does it if needed)."""
    from deploy import broker
    from deploy.broker import BrokerPaths

    version = broker.fetch_jars(BrokerPaths(_stack_settings().state_dir / "kafka"))
    _err(f"kafka      Apache Kafka {version} jars ready")


@app.command("down")
def dev_down(
    wipe: bool = typer.Option(
        False,
        "--wipe",
        help="Then delete their data (every topic, the PostgreSQL cluster); the jars stay.",
    ),
) -> None:
    """Stop exactly the processes `nearline dev up` started."""
    from deploy import stack

    stack.down(_stack_settings(), wipe=wipe, log=_err)


@app.command("status")
def dev_status() -> None:
    """Show what runs, where, and which Kafka version."""
    from deploy import stack

    for line in stack.status(_stack_settings()):
        typer.echo(line)


@app.command("env")
def dev_env() -> None:
    """Print `export KAFKA_BOOTSTRAP_SERVERS=… DATABASE_URL=…` for eval."""
    from deploy import stack
    from schemas.settings import DatabaseSettings, load

    external = load(DatabaseSettings).database_url
    typer.echo(
        stack.env_exports(_stack_settings(), external.get_secret_value() if external else None)
    )


@app.command("check")
def dev_check() -> None:
    """Check that KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL answer (any cluster, not only ours)."""
    from schemas.connectivity import broker_metadata, database_version
    from schemas.settings import DatabaseSettings, KafkaSettings, load

    kafka = load(KafkaSettings)
    info = broker_metadata(kafka.client_config())
    typer.echo(
        f"kafka      {kafka.bootstrap_servers}: cluster {info.cluster_id}, "
        f"{info.brokers} broker(s), {info.topics} topics"
    )
    typer.echo(f"postgres   PostgreSQL {database_version(load(DatabaseSettings).url())}")


def _err(line: str) -> None:
    typer.echo(line, err=True)
