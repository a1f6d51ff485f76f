"""Step 3 of the demo: the offline job on the stored history, as `nearline train` runs it.

The job's own settings apply (``NEARLINE_BATCH_*``: holdout, preset, config file), except
that its report goes into the run's folder. The first model of a run's fresh topics always
passes the gate, so it is published.

Example::

    outcome = train_and_publish(kafka, database_url, names, run_dir / "reports")
    outcome.version, outcome.metrics["precision@10"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from batch.command import train_config
from batch.job import run_job
from batch.settings import BatchSettings
from deploy.demo.namespace import RunNames
from schemas.catalogue import Catalogue
from schemas.database import make_engine
from schemas.errors import NearlineError
from schemas.settings import KafkaSettings, load


@dataclass(frozen=True)
class TrainOutcome:
    version: int
    metrics: dict[str, float]
    holdout: str
    seconds: float


def train_and_publish(
    kafka: KafkaSettings,
    database_url: str,
    names: RunNames,
    report_dir: Path,
    say: Callable[[str], None] = print,
) -> TrainOutcome:
    settings = load(BatchSettings, report_dir=report_dir)
    engine = make_engine(database_url, db_schema=names.schema)
    try:
        result = run_job(
            kafka, engine, Catalogue(names.prefix), settings, train_config(settings), say=say
        )
    finally:
        engine.dispose()
    if not result.published:
        raise NearlineError(
            f"the offline job did not publish model v{result.version}: "
            + "; ".join(result.verdict.reasons)
        )
    return TrainOutcome(
        result.version, dict(result.metrics), settings.holdout, result.timings["total"]
    )
