"""Wall time of the whole offline job on ML-100K, beside bare LightFM in the same run.

Sets up its own topics and database schema, replays ML-100K through Kafka into PostgreSQL
with the sink (not timed), then times ``run_job`` — snapshot, features, training, evaluation
(candidate and current model), gate, publishing the artifact, storing batch results,
publishing offline sets, the report — for the default configuration and for LightFM's
published example. The reference is LightFM alone: ``fit`` for the same epochs on the same
interactions plus ``lightfm.evaluation`` precision@10 and AUC: the floor any job built on
LightFM pays.

    eval "$(nearline dev env)"
    python benchmarks/offline_job.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k

from batch import holdouts, packaging
from batch.config import TrainConfig
from batch.features import FeatureSpace
from batch.interactions import to_interactions
from batch.job import run_job
from batch.settings import BatchSettings
from batch.sink.loop import run_sink
from batch.sink.settings import SinkSettings
from batch.snapshot import read_snapshot
from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.database import make_engine
from schemas.settings import DatabaseSettings, KafkaSettings, load


def bare_lightfm(engine: sa.Engine, config: TrainConfig) -> tuple[float, float, float]:
    """Seconds for LightFM fit + evaluation alone, and its precision@10 / AUC."""
    snapshot = read_snapshot(engine)
    train_events, test_events = holdouts.split(snapshot.events, "ua")
    space = FeatureSpace.build(snapshot.events, snapshot.items, snapshot.users, config)
    data = to_interactions(train_events, space, config)
    test, _ = packaging.pairs_matrix(test_events, space.user_ids, space.item_ids)
    start = time.perf_counter()
    model = LightFM(
        loss=config.loss,
        no_components=config.no_components,
        learning_rate=config.learning_rate,
        random_state=config.random_state,
    )
    model.fit(
        data.matrix,
        item_features=space.item_features,
        user_features=space.user_features,
        sample_weight=data.weights,
        epochs=config.epochs,
        num_threads=config.threads(),
    )
    features = {"item_features": space.item_features, "user_features": space.user_features}
    precision = precision_at_k(model, test, k=10, num_threads=config.threads(), **features).mean()
    auc = auc_score(model, test, num_threads=config.threads(), **features).mean()
    return time.perf_counter() - start, float(precision), float(auc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    kafka, db = load(KafkaSettings), load(DatabaseSettings)
    token = f"bench{uuid.uuid4().hex[:8]}"
    catalogue = Catalogue(prefix=f"{token}.")
    ensure_topics(kafka, catalogue)
    engine = make_engine(db.url(), db_schema=token)
    env = {"NEARLINE_TOPIC_PREFIX": catalogue.prefix, "NEARLINE_DB_SCHEMA": token}
    import os

    subprocess.run(
        [sys.executable, "-m", "deploy.cli", "events", "replay", "movielens"],
        env={**os.environ, **env},
        check=True,
    )
    run_sink(
        kafka,
        db.url(),
        SinkSettings(topic_prefix=catalogue.prefix, db_schema=token, stop_when_idle_s=3),
    )
    rows = []
    try:
        for name, config in (
            ("LightFM example", TrainConfig.lightfm_movielens_implicit()),
            ("nearline default", TrainConfig()),
        ):
            settings = BatchSettings(holdout="ua", report_dir=f"reports/{token}")
            start = time.perf_counter()
            result = run_job(
                kafka, engine, catalogue, settings, config, force=True, say=lambda _line: None
            )
            wall = time.perf_counter() - start
            ref_s, ref_p, ref_auc = bare_lightfm(engine, config)
            rows.append((name, wall, result, ref_s, ref_p, ref_auc))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema if exists "{token}" cascade'))
        engine.dispose()
    print(
        f"\n{'configuration':<18} {'job wall s':>10} {'bare LightFM s':>15} "
        f"{'p@10 (LightFM protocol)':>24} {'auc':>6} {'bare p@10':>10} {'bare auc':>9}"
    )
    for name, wall, result, ref_s, ref_p, ref_auc in rows:
        m = result.metrics
        print(
            f"{name:<18} {wall:>10.2f} {ref_s:>15.2f} "
            f"{m['lightfm_protocol_precision@10']:>24.4f} {m['lightfm_protocol_auc']:>6.3f} "
            f"{ref_p:>10.4f} {ref_auc:>9.3f}"
        )
        print(f"{'':<18} steps: {result.timings}")
    print("\ngoal: the whole job <= 10 s; published reference precision@10 0.11, AUC 0.90")


if __name__ == "__main__":
    main()
