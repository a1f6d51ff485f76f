"""``nearline train``: the offline job from the environment's settings, once or on a schedule.

Example::

    from batch.command import train_main
    train_main(dry_run=False, force=False, every=None)
"""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Callable
from types import FrameType

from batch.config import TrainConfig
from batch.job import JobResult, run_job
from batch.settings import BatchSettings
from schemas.catalogue import Catalogue
from schemas.connectivity import broker_metadata, database_version
from schemas.database import make_engine
from schemas.errors import ConfigError
from schemas.migrations import migrate
from schemas.settings import DatabaseSettings, KafkaSettings, TopicSettings, load

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``1d`` -> seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--every {text!r}: expected a positive duration like 90s, 15m, 1h, 1d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def train_config(settings: BatchSettings) -> TrainConfig:
    base = (
        TrainConfig.lightfm_movielens_implicit()
        if settings.preset == "movielens-implicit"
        else TrainConfig()
    )
    if settings.config_file is None:
        return base
    try:
        overrides = json.loads(settings.config_file.read_text())
        return TrainConfig.model_validate({**base.model_dump(), **overrides})
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()
        raise ConfigError(f"training config {settings.config_file}: {' '.join(first[:3])}") from exc


def train_main(
    *,
    dry_run: bool,
    force: bool,
    every: str | None,
    say: Callable[[str], None] = print,
    **overrides: object,
) -> JobResult | None:
    """Run the job once (or every ``every`` until SIGTERM/Ctrl-C); return the last result."""
    settings = load(BatchSettings, **{k: v for k, v in overrides.items() if v is not None})
    config = train_config(settings)
    interval = parse_duration(every) if every else None
    kafka = load(KafkaSettings)
    db = load(DatabaseSettings)
    broker_metadata(kafka.client_config())
    database_version(db.url())
    catalogue = Catalogue(load(TopicSettings).topic_prefix)
    engine = make_engine(db.url(), db_schema=db.db_schema)
    migrate(engine)
    stop = threading.Event()
    if interval is not None:

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            say(f"{signal.Signals(signum).name}: stopping after this run")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    result = None
    try:
        while True:
            result = run_job(
                kafka, engine, catalogue, settings, config, dry_run=dry_run, force=force, say=say
            )
            say(f"report: {result.report}; timings (s): {result.timings}")
            if interval is None or stop.wait(interval):
                return result
    finally:
        engine.dispose()
