"""`nearline demo`: the whole platform on MovieLens-100K, from an empty stack to a summary.

Example::

    $ nearline demo --quick              # about a minute; the README's main job
    $ nearline demo --rate 400 --users 5
"""

from __future__ import annotations

import sys

import typer


def demo(
    quick: bool = typer.Option(
        False, "--quick", help="2,000 live events (10 s) and 3 users shown: ends within 2 min."
    ),
    rate: float = typer.Option(None, "--rate", help="Live events per second (default 200)."),
    live_events: int = typer.Option(
        None, "--live-events", help="Live events at most; 0 = all 20% (default 0)."
    ),
    users: int = typer.Option(
        None, "--users", help="Users shown before and after their events (default 4)."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the run's topics, schema and logs, to explore them after."
    ),
) -> None:
    """Replay 80% of ML-100K as history, train, then replay the rest live through a worker
    and the server, showing users' recommendations change; ends with latency and quality
    figures. Ctrl-C stops everything the demo started."""
    import time

    began = time.monotonic()  # before the imports below, which take seconds
    try:
        from deploy.demo.run import run_demo
        from deploy.demo.settings import DemoSettings, with_quick
        from schemas.settings import load

        given = {"rate": rate, "live_events": live_events, "users": users}
        settings = load(DemoSettings, **{k: v for k, v in given.items() if v is not None})
        if keep:
            settings = settings.model_copy(update={"keep": True})
        if quick:
            settings = with_quick(settings)
        summary = run_demo(settings, say=lambda line: typer.echo(line, err=True), began=began)
    except KeyboardInterrupt:
        # Typer turns a KeyboardInterrupt into an exit code that `nearline`'s main() does not
        # pass on (standalone_mode=False returns it), so leave with 130 here, like a shell.
        typer.echo("nearline: interrupted", err=True)
        sys.exit(130)
    typer.echo("\n".join(summary.lines()))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
