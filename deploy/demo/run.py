"""`nearline demo` from start to summary, and the clean stop whatever happens.

Everything the run starts is registered for stopping as soon as it exists: the stack
services it started, its topics, groups and schema, its child processes. At the end, on an
error, on Ctrl-C or on SIGTERM, they are stopped in reverse order (children, then the
run's data, then the services), with further Ctrl-Cs held off until that is done.

Example::

    summary = run_demo(with_quick(DemoSettings()))
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from deploy import stack
from deploy.demo import namespace
from deploy.demo.group_offsets import skip_to_end
from deploy.demo.history import store_history
from deploy.demo.live import run_live
from deploy.demo.namespace import RunNames
from deploy.demo.offline import train_and_publish
from deploy.demo.plan import Plan, make_plan
from deploy.demo.role_processes import start_roles
from deploy.demo.services import Services, bring_up
from deploy.demo.settings import DemoSettings
from deploy.demo.stopping import defer, interrupts
from deploy.demo.summary import Summary
from deploy.settings import StackSettings
from schemas import movielens
from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.settings import DatabaseSettings, KafkaSettings, load

Say = Callable[[str], None]


def run_demo(settings: DemoSettings, say: Say = print, began: float | None = None) -> Summary:
    """Run the six steps; return the summary once everything the run started is stopped.

    ``began`` (``time.monotonic()``) is when the command started, for the wall time.
    """
    began = time.monotonic() if began is None else began
    stack_settings = load(StackSettings)
    kafka, database = load(KafkaSettings), load(DatabaseSettings)
    data = movielens.load()  # a missing data set fails here, before anything starts
    plan = make_plan(
        movielens.in_time_order(data.ratings),
        history_share=settings.history_share,
        live_events=settings.live_events,
        users=settings.users,
    )
    names = RunNames.new()
    run_dir = stack_settings.state_dir / "demo" / names.run_id
    run_dir.mkdir(parents=True)
    say(
        f"demo run {names.run_id}: {len(plan.history):,} history events, {len(plan.live):,} "
        f"live at {settings.rate:g}/s; logs in {run_dir}"
    )
    cleanup, outcome = ExitStack(), "failed"
    with interrupts(say) as signals:
        try:
            say("[1/6] the stack and the topics")
            services = bring_up(stack_settings, kafka, database, log=say)
            if services.started:
                defer(cleanup, say, _stop_services, stack_settings, services, say)
            if not settings.keep:
                defer(cleanup, say, _remove, services, names, say)
            ensure_topics(services.kafka, Catalogue(names.prefix))
            summary = _steps(settings, services, names, plan, data, run_dir, cleanup, say)
            outcome = "done"
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise
        finally:
            signals.hold_off()
            cleanup.close()
            if outcome == "failed" and any(run_dir.iterdir()):  # the children's logs say why
                say(f"the logs of this run are in {run_dir}")
            elif not settings.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
    if settings.keep:
        summary.notes.append(
            f"kept: NEARLINE_TOPIC_PREFIX={names.prefix} NEARLINE_DB_SCHEMA={names.schema}, "
            f"logs in {run_dir}"
        )
    summary.wall_s = time.monotonic() - began
    return summary


def _steps(
    settings: DemoSettings,
    services: Services,
    names: RunNames,
    plan: Plan,
    data: movielens.MovieLens,
    run_dir: Path,
    cleanup: ExitStack,
    say: Say,
) -> Summary:
    kafka, catalogue = services.kafka, Catalogue(names.prefix)
    say(f"[2/6] history: replaying {len(plan.history):,} ratings in time order, then storing them")
    history = store_history(kafka, services.database_url, names, plan.history, data)
    say(
        f"      {history.stored:,} events stored ({history.replay_s:.1f} s replay, "
        f"{history.sink_s:.1f} s sink)"
    )
    say("[3/6] training and publishing a model")
    model = train_and_publish(kafka, services.database_url, names, run_dir / "reports", say)
    say("[4/6] starting a worker and the server")
    skipped = skip_to_end(kafka, names.worker_group, [t.name for t in catalogue.event_topics])
    say(f"      the worker starts after the {skipped:,} history events (the model has them)")
    roles = start_roles(settings, services, names, plan, run_dir, cleanup, say)
    say(
        f"[5/6] live: {len(plan.live):,} events at {settings.rate:g}/s; users shown: "
        f"{', '.join(plan.featured) or 'none'}"
    )
    titles = dict(zip(data.items["item_id"], data.items["title"], strict=True))
    live = run_live(kafka, catalogue, plan, roles.port, settings, titles, checks=roles.checks)
    say("[6/6] stopping what the demo started, then the summary")
    tracker = live.tracker
    return Summary(
        run_id=names.run_id,
        history_events=history.events,
        history_stored=history.stored,
        model_version=model.version,
        metrics=model.metrics,
        holdout=model.holdout,
        live_events=tracker.sent_count,
        live_s=live.send_s,
        rate=settings.rate,
        covered=tracker.covered,
        sets=tracker.sets,
        latencies=tracker.latencies,
        serve=live.serve_timings,
        wall_s=0.0,
        notes=live.problems(),
    )


def _remove(services: Services, names: RunNames, say: Say) -> None:
    removed = namespace.remove(services.kafka, services.database_url, names, warn=say)
    topics = sum(1 for r in removed if r.startswith("topic "))
    say(f"removed the run's {topics} topics, its consumer groups and its schema {names.schema}")


def _stop_services(settings: StackSettings, services: Services, say: Say) -> None:
    say(f"stopping what the demo started: {', '.join(services.started)}")
    # EventProducer holds itself through its delivery callback, so a finished producer
    # lives until the cycle collector runs; collect now, or it would log reconnect errors
    # while the broker goes down.
    gc.collect()
    stack.down(settings, services=tuple(services.started), log=say)
