"""Building the Faust app from settings: nothing here runs, reads the environment or connects
until called.

Example::

    from schemas.settings import KafkaSettings, load
    from streams.app import create_app
    from streams.settings import StreamsSettings

    app = create_app(load(StreamsSettings), load(KafkaSettings))
    faust.Worker(app, loglevel="info").execute_from_commandline()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust
import mode
from faust.types import EventT

from schemas.catalogue import EVENT_PARTITIONS, Catalogue
from schemas.codec import default_codec
from schemas.dead_letters import DeadLetterWriter
from schemas.model_loader import ModelFollower
from schemas.settings import KafkaSettings, load
from streams.agents import register_agents
from streams.broker import broker_options
from streams.continuity import Continuity, FirstOffset
from streams.intake import Intake
from streams.letters import LetterBox
from streams.model import ModelHolder
from streams.model_service import ModelService
from streams.output import Output
from streams.processor import EventProcessor
from streams.settings import StreamsSettings
from streams.signals import Weights
from streams.tables import Tables
from streams.transport import Consumer, Transport
from streams.trending import DecayedCounts
from streams.trending_board import TrendingBoard


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything one worker process holds, for the agent and for tests to reach."""

    app: faust.App
    settings: StreamsSettings
    catalogue: Catalogue
    tables: Tables
    models: ModelHolder
    model_service: ModelService
    processor: EventProcessor[EventT[Any]]
    output: Output[EventT[Any]]
    letters: LetterBox
    continuity: Continuity


def build(settings: StreamsSettings, kafka: KafkaSettings, *, replication: int = 1) -> Runtime:
    """The app and its parts; ``replication`` is that of the changelog topics Faust creates."""
    catalogue = Catalogue(settings.topic_prefix)
    app = faust.App(
        settings.group_id,
        **broker_options(kafka),
        store="memory://",
        autodiscover=False,
        topic_partitions=EVENT_PARTITIONS,
        topic_replication_factor=replication,
        topic_disable_leader=True,
        table_standby_replicas=settings.standby_replicas,
        broker_commit_interval=settings.commit_interval_s,
        # Faust's default (60 s) would leave a crashed worker's partitions unserved that long.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        consumer_auto_offset_reset="earliest",
        # An agent that crashes stops the worker (non-zero exit) instead of being
        # restarted in place or, worse, leaving a worker that runs but processes nothing.
        agent_supervisor=mode.CrashingSupervisor,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        datadir=str(settings.datadir),
        worker_redirect_stdouts=False,
    )
    # Before anything reaches app.transport: see streams.transport for the fix it carries.
    app.transport = Transport(app.conf.broker_consumer, app)
    tables = Tables.declare(app, catalogue)
    models = ModelHolder()
    model_service = ModelService(ModelFollower(kafka, catalogue, models.swap, models.refused))
    app.add_dependency(model_service)
    half_life_ms = settings.trending_half_life_s * 1000

    def make_counts() -> DecayedCounts:
        return DecayedCounts(half_life_ms, settings.trending_items, settings.trending_devices)

    def assigned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives()}

    board = TrendingBoard(
        tables.trending,
        make_counts,
        assigned,
        snapshot_s=settings.trending_snapshot_s,
        refresh_s=settings.trending_refresh_s,
    )
    intake = Intake(
        catalogue, default_codec(), Weights(settings.view_weight, settings.click_weight)
    )
    output: Output[EventT[Any]] = Output(kafka)
    processor: EventProcessor[EventT[Any]] = EventProcessor(
        intake, tables.states, tables.latest, board, models, output, settings, default_codec()
    )
    letters = LetterBox(lambda: DeadLetterWriter(kafka, catalogue))
    continuity = Continuity(cast(Consumer, app.consumer), FirstOffset(kafka))
    runtime = Runtime(
        app,
        settings,
        catalogue,
        tables,
        models,
        model_service,
        processor,
        output,
        letters,
        continuity,
    )
    register_agents(runtime)
    return runtime


def create_app(
    settings: StreamsSettings, kafka: KafkaSettings | None = None, *, replication: int = 1
) -> faust.App:
    """The worker's Faust app, with its tables, agent and model follower."""
    return build(settings, kafka or load(KafkaSettings), replication=replication).app
