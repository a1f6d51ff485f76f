"""The offline job: snapshot -> train -> evaluate -> gate -> publish -> batch results.

Example::

    result = run_job(kafka, engine, Catalogue(), settings, config)
    result.published, result.version, result.metrics["precision"]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from batch import holdouts, packaging
from batch.config import TrainConfig
from batch.evaluation import PUBLISHED_UA, Metrics, Verdict, compare, evaluate
from batch.features import FeatureSpace, SnapshotError
from batch.interactions import to_interactions
from batch.offline_sets import publish_offline_sets
from batch.report import write_report
from batch.result_store import store_results
from batch.results import item_clusters, recommendations, similar_items, unit_rows
from batch.settings import BatchSettings
from batch.snapshot import read_snapshot
from batch.training import train
from schemas.catalogue import Catalogue
from schemas.model_loader import scan_models
from schemas.model_publisher import publish_model
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass
class JobResult:
    version: int
    published: bool
    verdict: Verdict
    metrics: dict[str, float]
    current_metrics: dict[str, float] | None
    report: str
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - start, 3)


def _metrics_dict(metrics: Metrics, prefix: str = "") -> dict[str, float]:
    k = metrics.k
    return {
        f"{prefix}precision@{k}": metrics.precision,
        f"{prefix}recall@{k}": metrics.recall,
        f"{prefix}ndcg@{k}": metrics.ndcg,
        f"{prefix}auc": metrics.auc,
        f"{prefix}coverage@{k}": metrics.coverage,
    }


def run_job(
    kafka: KafkaSettings,
    engine: sa.Engine,
    catalogue: Catalogue,
    settings: BatchSettings,
    config: TrainConfig,
    *,
    dry_run: bool = False,
    force: bool = False,
    say: Say = print,
) -> JobResult:
    """Run the whole offline job once. Publishes only if the gate passes (or ``force``)."""
    timings: dict[str, float] = {}
    with _timed(timings, "snapshot"):
        snapshot = read_snapshot(engine)
    positives = int((snapshot.events["event_type"].map(config.event_weights).fillna(0) > 0).sum())
    if positives < settings.min_events:
        raise SnapshotError(
            f"the snapshot has {positives} positive events (of {len(snapshot.events)}); at "
            f"least {settings.min_events} are needed to train. Produce events and run "
            "`nearline sink` first"
        )
    say(
        f"snapshot: {len(snapshot.events):,} events, {snapshot.cutoff['users']} users and "
        f"{snapshot.cutoff['items']} items of metadata ({timings['snapshot']:.2f} s)"
    )
    with _timed(timings, "features"):
        train_events, test_events = holdouts.split(
            snapshot.events, settings.holdout, settings.holdout_n
        )
        space = FeatureSpace.build(snapshot.events, snapshot.items, snapshot.users, config)
        train_data = to_interactions(train_events, space, config)
        seen_train, _ = packaging.pairs_matrix(train_events, space.user_ids, space.item_ids)
        test, _ = packaging.pairs_matrix(test_events, space.user_ids, space.item_ids)
    with _timed(timings, "train"):
        model = train(train_data, space, config, progress=True)
    with _timed(timings, "evaluate"):
        candidate = evaluate(model, test, seen_train, k=config.k)
        metrics = _metrics_dict(candidate)
        if settings.holdout == "ua":  # LightFM's protocol: train items stay in the ranking
            metrics.update(
                _metrics_dict(evaluate(model, test, None, k=config.k), prefix="lightfm_protocol_")
            )
    with _timed(timings, "current_model"):
        scan = scan_models(kafka, catalogue, timeout=settings.scan_timeout_s)
        current = None
        if scan.model is not None:
            old = scan.model
            old_test, dropped = packaging.pairs_matrix(test_events, old.user_ids, old.item_ids)
            old_seen, _ = packaging.pairs_matrix(train_events, old.user_ids, old.item_ids)
            current = evaluate(packaging.from_artifact(old), old_test, old_seen, k=config.k)
            if dropped:
                say(
                    f"current model v{old.version}: {dropped} holdout pairs have ids it "
                    "does not know and are left out of its score"
                )
    verdict = compare(candidate, current, config.gate_tolerance, config.gate_metrics)
    version = scan.next_version
    say(_summary(candidate, current, version, scan.model.version if scan.model else None))
    if settings.holdout == "ua":
        k = config.k
        say(
            f"LightFM's protocol (train items kept in the ranking): precision@{k} "
            f"{metrics[f'lightfm_protocol_precision@{k}']:.4f}  auc "
            f"{metrics['lightfm_protocol_auc']:.4f}  (published: precision@10 "
            f"{PUBLISHED_UA['precision']:.2f}, auc {PUBLISHED_UA['auc']:.2f})"
        )
    publish = verdict.passed or force
    if not verdict.passed:
        say(
            ("gate overridden by --force: " if force else "gate refused: ")
            + "; ".join(verdict.reasons)
        )
    if publish and not dry_run:
        with _timed(timings, "batch_results"):
            frames, clusters = _batch_results(model, space, snapshot, version, config)
        with _timed(timings, "publish_model"):
            artifact = packaging.to_artifact(
                model,
                version=version,
                config=config.model_dump(mode="json"),
                cutoff={**snapshot.cutoff, "holdout": settings.holdout},
                metrics=metrics,
            )
            publish_model(kafka, catalogue, artifact, scan=scan)
        with _timed(timings, "store_results"):
            rows = store_results(engine, frames)
        with _timed(timings, "offline_sets"):
            sets = publish_offline_sets(
                kafka,
                catalogue,
                frames["offline_recommendations"],
                model_version=version,
                clusters=clusters,
            )
        say(
            f"published model v{version}; stored {rows}; {sets} offline sets on "
            f"{catalogue.topic('recommendations').name}"
        )
    with _timed(timings, "report"):
        report = write_report(
            settings.report_dir / f"model-v{version}",
            candidate,
            current,
            verdict,
            PUBLISHED_UA if settings.holdout == "ua" else None,
            timings,
            title=f"Offline model v{version}",
        )
    timings["total"] = round(sum(timings.values()), 3)
    return JobResult(
        version,
        publish and not dry_run,
        verdict,
        metrics,
        current.as_dict() if current else None,
        str(report.markdown),
        timings,
    )


def _batch_results(
    model: Any, space: FeatureSpace, snapshot: Any, version: int, config: TrainConfig
) -> tuple[dict[str, Any], dict[str, int]]:
    seen, _ = packaging.pairs_matrix(snapshot.events, space.user_ids, space.item_ids)
    recs = recommendations(model, seen, config.top_n, version)
    frames = {
        "offline_recommendations": recs,
        "similar_items": similar_items(model, config.similar_k, version),
        "item_clusters": item_clusters(model, version),
    }
    # Users join the cluster whose centroid points most their way (cosine), the same rule
    # nearline and online use for users the model has never seen.
    nearest = np.argmax(
        unit_rows(model.user_embeddings) @ unit_rows(model.cluster_centroids).T, axis=1
    )
    clusters = {str(u): int(c) for u, c in zip(model.user_ids, nearest, strict=True)}
    return frames, clusters


def _summary(
    candidate: Metrics, current: Metrics | None, version: int, current_version: int | None
) -> str:
    k = candidate.k
    line = (
        f"candidate v{version}: precision@{k} {candidate.precision:.4f}  "
        f"recall@{k} {candidate.recall:.4f}  ndcg@{k} {candidate.ndcg:.4f}  "
        f"auc {candidate.auc:.4f}  coverage@{k} {candidate.coverage:.3f}"
    )
    if current is not None:
        line += (
            f"\ncurrent   v{current_version}: precision@{k} {current.precision:.4f}  "
            f"recall@{k} {current.recall:.4f}  ndcg@{k} {current.ndcg:.4f}  "
            f"auc {current.auc:.4f}  coverage@{k} {current.coverage:.3f}"
        )
    return line
