"""The `nearline` command. Each role's commands are imported only when they run, so a
command never pays for (or breaks on) another role's dependencies.

Example::

    $ nearline dev up && eval "$(nearline dev env)"
    $ nearline topics create
    $ nearline events replay movielens --limit 1000
"""

from __future__ import annotations

import sys

import typer

from deploy.cli import dev, events, roles, topics
from schemas.errors import NearlineError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="nearline: a Kafka-native recommendation platform.",
)
app.add_typer(dev.app, name="dev")
app.add_typer(topics.app, name="topics")
app.add_typer(events.app, name="events")
roles.register(app)


def main() -> None:
    """Entry point: run the app, turning nearline's own errors into one clear line."""
    try:
        app(standalone_mode=False)
    except NearlineError as exc:
        typer.echo(f"nearline: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("nearline: interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
