"""`nearline events ...`: producing events (JSON lines, MovieLens replay)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from schemas.producer import EventProducer

app = typer.Typer(no_args_is_help=True, help="Produce events to the event topics.")
replay_app = typer.Typer(no_args_is_help=True, help="Replay a real data set as events.")
app.add_typer(replay_app, name="replay")

TYPE_NAMES = {"click": "ClickEvent", "browse": "BrowseEvent", "view": "ViewEvent"}


def _producer() -> EventProducer:
    from schemas.catalogue import Catalogue
    from schemas.connectivity import broker_metadata
    from schemas.producer import EventProducer
    from schemas.settings import KafkaSettings, TopicSettings, load

    kafka = load(KafkaSettings)
    broker_metadata(kafka.client_config())  # one clear line if the broker is not there
    return EventProducer(kafka, Catalogue(load(TopicSettings).topic_prefix))


def parse_line(line: str) -> tuple[str, dict[str, Any]]:
    """One JSON line -> (event type, record). ``type`` is click, browse or view; a missing
    ``event_id`` or ``ts`` is filled in (a fresh UUID, now)."""
    from schemas.errors import SchemaError
    from schemas.events import new_event_id, now_ms

    try:
        record = json.loads(line)
    except ValueError as exc:
        raise SchemaError(f"invalid JSON: {exc}", reason="invalid-json") from exc
    if not isinstance(record, dict):
        raise SchemaError("each line must be a JSON object", reason="wrong-type")
    kind = str(record.pop("type", ""))
    schema = TYPE_NAMES.get(kind.lower(), kind if kind in TYPE_NAMES.values() else None)
    if schema is None:
        raise SchemaError(
            f'"type" must be one of {", ".join(TYPE_NAMES)}, got {kind!r}',
            reason="missing-field" if not kind else "invalid-value",
        )
    record.setdefault("event_id", new_event_id())
    record.setdefault("ts", now_ms())
    return schema, record


@app.command("produce")
def produce(
    file: str = typer.Option(..., "--file", "-f", help="JSON lines file, or - for stdin."),
) -> None:
    """Produce one event per JSON line, e.g. {"type": "click", "user_id": "u1", ...}.

    Lines that fail validation are reported with their line number and skipped; the command
    then exits with status 1, after producing every valid line.
    """
    from schemas.errors import SchemaError

    stream = sys.stdin if file == "-" else Path(file).open(encoding="utf-8")  # noqa: SIM115
    rejected = sent = 0
    with stream, _producer() as producer:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                schema, record = parse_line(line)
                producer.send(schema, record, validate=True)
                sent += 1
            except SchemaError as exc:
                rejected += 1
                typer.echo(f"line {number}: {exc.reason}: {exc}", err=True)
    typer.echo(f"produced {sent} events, rejected {rejected}", err=True)
    if rejected:
        raise typer.Exit(1)


@replay_app.command("movielens")
def replay_movielens(
    max_rate: float = typer.Option(0, help="Events per second at most; 0 = as fast as possible."),
    limit: int = typer.Option(0, help="Replay at most this many ratings; 0 = all."),
    skip: int = typer.Option(0, help="Start after this many ratings (in time order)."),
    metadata: bool = typer.Option(True, help="Also load item and user metadata into PostgreSQL."),
) -> None:
    """Replay MovieLens-100K as ViewEvents in time order (deterministic event ids)."""
    from deploy.replay import replay
    from schemas import movielens

    data = movielens.load()
    if metadata:
        _load_metadata(data)
    ratings = movielens.in_time_order(data.ratings).iloc[skip:]
    if limit:
        ratings = ratings.iloc[:limit]
    with _producer() as producer:
        sent = replay(
            producer,
            "ViewEvent",
            movielens.view_events(ratings),
            total=len(ratings),
            max_rate=max_rate or None,
        )
    typer.echo(f"replayed {sent} MovieLens ratings as ViewEvents", err=True)


def _load_metadata(data: Any) -> None:
    from schemas.database import make_engine
    from schemas.metadata import upsert_items, upsert_users
    from schemas.migrations import migrate
    from schemas.settings import DatabaseSettings, load

    db = load(DatabaseSettings)
    engine = make_engine(db.url(), db_schema=db.db_schema)
    try:
        migrate(engine)
        items = data.items.astype(object).where(data.items.notna(), None)
        n_items = upsert_items(engine, items.to_dict("records"))
        users = data.users.astype(object).where(data.users.notna(), None)
        n_users = upsert_users(engine, users.to_dict("records"))
    finally:
        engine.dispose()
    typer.echo(f"metadata: {n_items} items, {n_users} users in PostgreSQL", err=True)
