"""The role processes: `nearline sink`, `nearline train` (and later `worker`, `serve`).

Each command only parses its options and hands over to its role's entry point, importing it
when it runs.
"""

from __future__ import annotations

import typer


def sink(
    until_idle: float = typer.Option(
        0, "--until-idle", help="Stop once no event arrived for this many seconds (0: run on)."
    ),
) -> None:
    """Store the event topics in PostgreSQL (idempotent by event_id). Ctrl-C stops cleanly."""
    import os

    from batch.sink.command import main

    if until_idle:
        # The sink reads its settings from the environment, like every role; the option
        # is a shorthand for NEARLINE_SINK_STOP_WHEN_IDLE_S.
        os.environ["NEARLINE_SINK_STOP_WHEN_IDLE_S"] = str(until_idle)
    stats = main()
    typer.echo(
        f"sink: {stats.rows_inserted} rows stored, {stats.duplicates} duplicates skipped, "
        f"{stats.dead_letters} dead letters, {stats.batches} batches",
        err=True,
    )


def register(app: typer.Typer) -> None:
    app.command("sink")(sink)
