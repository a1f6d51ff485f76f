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

from deploy.cli import demo, dev, events, roles, topics
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
demo.register(app)


def main() -> None:
    """Entry point: run the app, turning nearline's own errors into one clear line.

    The exit status is the command's: in non-standalone mode typer *returns* the code of a
    ``typer.Exit`` (``nearline worker`` exits non-zero after a crash, so that a supervisor
    restarts it) instead of raising it, and turns Ctrl-C into ``typer.Abort``.
    """
    try:
        code = app(standalone_mode=False)
    except NearlineError as exc:
        typer.echo(f"nearline: error: {exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("nearline: interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors arrive here in non-standalone mode
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(int(getattr(exc, "exit_code", 2)))
    if code == 130:  # typer returns Ctrl-C as this status rather than raising it
        typer.echo("nearline: interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)
