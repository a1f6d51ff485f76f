"""`nearline topics ...`: the topic catalogue on the cluster."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Kafka topics declared in the catalogue.")


@app.command("create")
def create(
    replication: int = typer.Option(0, help="Replication factor; 0 = min(3, brokers)."),
) -> None:
    """Create every catalogue topic with its declared settings. Idempotent."""
    from schemas.admin import ensure_topics
    from schemas.catalogue import Catalogue
    from schemas.settings import KafkaSettings, TopicSettings, load

    catalogue = Catalogue(load(TopicSettings).topic_prefix)
    for name, outcome in ensure_topics(
        load(KafkaSettings), catalogue, replication=replication or None
    ):
        topic = catalogue.by_name(name)
        typer.echo(
            f"{outcome:<8} {name:<28} partitions={topic.partitions} cleanup={topic.cleanup_policy}"
        )


@app.command("list")
def list_() -> None:
    """Show the catalogue: name, key, value schema, partitions, policy, retention, table."""
    from schemas.catalogue import Catalogue
    from schemas.settings import TopicSettings, load

    for topic in Catalogue(load(TopicSettings).topic_prefix):
        retention = "forever" if topic.retention_ms < 0 else f"{topic.retention_ms // 3_600_000}h"
        typer.echo(
            f"{topic.name:<28} key={topic.key.split(' ')[0]:<10} "
            f"value={'|'.join(topic.value_schemas):<26} partitions={topic.partitions:<3} "
            f"{topic.cleanup_policy:<8} retention={retention:<8} "
            f"table={topic.table or '-'}"
        )
