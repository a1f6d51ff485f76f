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
    from batch.sink.command import main

    # The option is a shorthand for NEARLINE_SINK_STOP_WHEN_IDLE_S, and wins over it.
    stats = main(**({"stop_when_idle_s": until_idle} if until_idle else {}))
    typer.echo(
        f"sink: {stats.rows_inserted} rows stored, {stats.duplicates} duplicates skipped, "
        f"{stats.dead_letters} dead letters, {stats.batches} batches",
        err=True,
    )


def train(
    dry_run: bool = typer.Option(False, "--dry-run", help="Train and evaluate; publish nothing."),
    force: bool = typer.Option(False, "--force", help="Publish even if the gate refuses."),
    every: str = typer.Option(None, "--every", help="Run again every DURATION (90s, 15m, 1h)."),
    holdout: str = typer.Option(None, "--holdout", help="recent (default) or ua (ML-100K)."),
    preset: str = typer.Option(
        None, "--preset", help="default, or movielens-implicit (LightFM's published example)."
    ),
    config: str = typer.Option(None, "--config", help="JSON file of TrainConfig overrides."),
    report_dir: str = typer.Option(None, "--report-dir", help="Where reports go (./reports)."),
) -> None:
    """Retrain LightFM from a PostgreSQL snapshot, gate it, publish it and the batch results.

    Exit 0 when published, 0 with a message when the gate refuses, non-zero on errors.
    """
    from batch.command import train_main

    result = train_main(
        dry_run=dry_run,
        force=force,
        every=every,
        holdout=holdout,
        preset=preset,
        config_file=config,
        report_dir=report_dir,
        say=lambda line: typer.echo(line, err=True),
    )
    if result is not None and not result.published:
        reason = "dry run" if dry_run else "the gate refused the candidate"
        typer.echo(f"not published ({reason}); the current model stays in force", err=True)


def serve() -> None:
    """Run the HTTP API (settings: NEARLINE_SERVING_*; docs at /docs). Ctrl-C stops it."""
    from serving.command import main

    main()


def worker() -> None:
    """Run a nearline worker (settings: NEARLINE_WORKER_*). More workers split the partitions."""
    from streams.command import main

    raise typer.Exit(main())


recs = typer.Typer(no_args_is_help=True, help="The recommendations topic, readable.")


@recs.command("tail")
def recs_tail(
    user: str = typer.Option(None, "--user", help="Only this user's sets."),
    from_beginning: bool = typer.Option(
        False, "--from-beginning", help="Start at the oldest set kept (the topic is compacted)."
    ),
    limit: int = typer.Option(0, "--limit", help="Stop after this many sets; 0 = follow."),
) -> None:
    """Print recommendation sets as they arrive: user, source, model version, items, reasons."""
    from streams.tail import tail

    tail(user, from_beginning, limit or None, out=typer.echo)


def register(app: typer.Typer) -> None:
    app.command("sink")(sink)
    app.command("train")(train)
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(recs, name="recs")
