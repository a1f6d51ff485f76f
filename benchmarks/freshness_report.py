"""The freshness experiment's printed tables: the data, the figures per subset of users and
hit-rate@10 by the number of events since training.

Figures of model-based methods are the mean ± sd over the training seeds; per-event figures
and the counts are their mean (the counts do not depend on the seed).

Example::

    describe(split, walk, ml.items, print)
    bars = table(results, names, print)          # {subset: [Bar, ...]}
    curve = by_since(results, keys, "all users", print)
    differences(results, [("(a) stale", "(b) fold-in")], print)
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.freshness_chart import Bar, Curve
from benchmarks.freshness_metrics import averages
from benchmarks.freshness_protocol import Split, Step

Log = Callable[[str], Any]
Results = dict[str, list[pd.DataFrame]]
"""Per method key, one scored frame per seed (one frame for methods without a model)."""
BUCKETS = ((0, 0, "0"), (1, 9, "1-9"), (10, 49, "10-49"), (50, 10**9, "50+"))
ALL = "all users"
KNOWN = "known users (rated before T)"
SUBSETS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    ALL: lambda f: f["known"] | ~f["known"],
    KNOWN: lambda f: f["known"],
    "new users (first rating after T)": lambda f: ~f["known"],
    "all users, only targets rated >= 4": lambda f: f["rating"] >= 4,
}


def describe(split: Split, walk: Sequence[Step], items: pd.DataFrame, log: Log) -> None:
    """The split's facts that bear on the reading: who is known, how bursty the ratings are,
    and how the taste of the moment drifts (recent releases; the films most rated after T)."""
    test = split.test
    tied = test.duplicated(["user_id", "ts"], keep=False).mean()
    known = set(split.train["user_id"])
    users = test["user_id"].unique()
    fresh_items = int((~test["item_id"].isin(set(split.train["item_id"]))).sum())
    log(
        f"cut-off T = {pd.to_datetime(split.cutoff, unit='s')} UTC: {len(split.train):,} "
        f"training ratings; {len(test):,} after T by {len(users)} users, "
        f"{sum(u in known for u in users)} of them known to the model"
    )
    hours = (test["ts"].max() - split.cutoff) / 3600
    span = test.groupby("user_id")["ts"].agg(lambda ts: ts.max() - ts.min()).median() / 86400
    log(
        f"  {tied:.0%} of the ratings after T share their second with another rating of the "
        f"same user; {len(test) / hours:.1f} ratings an hour; a user's ratings after T span "
        f"{span:.2f} days (median); {fresh_items} are of items nobody rated before T"
    )
    catalogue = items.set_index("item_id")
    recent = int(pd.to_datetime(split.cutoff, unit="s").year) - 1
    shares = [
        (frame["item_id"].map(catalogue["year"]) >= recent).mean() for frame in (split.train, test)
    ]
    top = ", ".join(catalogue["title"][i] for i in test["item_id"].value_counts().index[:4])
    log(
        f"  films released in {recent} or later: {shares[0]:.0%} of training ratings, "
        f"{shares[1]:.0%} of the ratings after T; most rated after T: {top}"
    )
    log(
        f"  walked: {len(walk):,} steps, {sum(len(s.targets) for s in walk):,} targets, "
        f"{len({s.user_id for s in walk})} users"
    )


def figures(frame: pd.DataFrame) -> tuple[float, float, float, float, int, int]:
    """(hit, NDCG per user; hit, NDCG per event; targets; users)."""
    users = frame["user"].tolist()
    hit_event, hit_user = averages(users, frame["hit"].tolist())
    ndcg_event, ndcg_user = averages(users, frame["ndcg"].tolist())
    return hit_user, ndcg_user, hit_event, ndcg_event, len(frame), frame["user"].nunique()


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(results: Results, names: Mapping[str, str], log: Log) -> dict[str, list[Bar]]:
    """Print the figures of every subset; return each subset's bars (labelled by key)."""
    bars: dict[str, list[Bar]] = {}
    header = (
        f"{'method':<66}{'HR@10/user':>16}{'NDCG@10/user':>16}"
        f"{'HR@10/event':>13}{'NDCG/event':>12}{'targets':>9}{'users':>7}"
    )
    for subset, rows in SUBSETS.items():
        log(f"\n{subset}\n{header}")
        bars[subset] = []
        for key, frames in results.items():
            found = [figures(f.loc[rows(f)]) for f in frames]
            (hit, hit_sd), (ndcg, ndcg_sd), (hit_e, _), (ndcg_e, _) = [
                mean_sd([f[i] for f in found]) for i in range(4)
            ]
            log(
                f"{names[key]:<66}{hit:>9.4f} ±{hit_sd:.4f}{ndcg:>9.4f} ±{ndcg_sd:.4f}"
                f"{hit_e:>13.4f}{ndcg_e:>12.4f}{found[0][4]:>9,}{found[0][5]:>7}"
            )
            bars[subset].append(Bar(key, hit, hit_sd, ndcg, ndcg_sd))
    return bars


def by_since(results: Results, keys: Sequence[str], subset: str, log: Log) -> Curve:
    """Per-user hit-rate@10 by events since training (mean over seeds) in ``subset``."""
    values: dict[str, list[float]] = {}
    ticks: list[str] = []
    log(
        f"\nHR@10 per user by events since training, {subset}\n{'method':<22}"
        + "".join(f"{label:>12}" for _, _, label in BUCKETS)
    )
    for key in keys:
        values[key] = []
        for low, high, bucket in BUCKETS:
            found = []
            for frame in results[key]:
                part = frame.loc[SUBSETS[subset](frame) & frame["since"].between(low, high)]
                found.append(averages(part["user"].tolist(), part["hit"].tolist())[1])
            if len(ticks) < len(BUCKETS):
                ticks.append(f"{bucket}\n({part['user'].nunique()} users)")
            values[key].append(statistics.mean(found))
        log(f"{key:<22}" + "".join(f"{v:>12.4f}" for v in values[key]))
    return Curve(f"hit-rate@10 by events since training, {subset}", ticks, values)


def per_user_gain(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """Per user, the hit-rate@10 of ``after`` minus that of ``before`` (same targets)."""
    hits = [frame.groupby("user", sort=False)["hit"].mean() for frame in (before, after)]
    return (hits[1] - hits[0]).dropna()


def differences(
    results: Results,
    pairs: Sequence[tuple[str, str]],
    log: Log,
    subsets: Sequence[str] = (ALL, KNOWN),
    draws: int = 2000,
) -> dict[tuple[str, str, str], tuple[float, float, float]]:
    """Per-user hit-rate@10 of y minus x, paired by seed and by user, for each (x, y).

    Two methods trained on the same seed share that seed's luck, so their gap is measured
    per seed. A method without a model has one frame, paired with every seed. Printed: the
    mean gain, each seed's, and a 95 % bootstrap interval over users (of each user's gain,
    averaged over seeds; fixed bootstrap seed). Returned: (subset, x, y) -> (gain, low, high).
    """
    out: dict[tuple[str, str, str], tuple[float, float, float]] = {}
    rng = np.random.default_rng(0)
    for subset in subsets:
        log(f"\nHR@10 per user, gain paired by seed and user, {subset}")
        for x, y in pairs:
            fx, fy = results[x], results[y]
            seeds = max(len(fx), len(fy))
            gains = [
                per_user_gain(
                    fx[i % len(fx)].loc[SUBSETS[subset](fx[i % len(fx)])],
                    fy[i % len(fy)].loc[SUBSETS[subset](fy[i % len(fy)])],
                )
                for i in range(seeds)
            ]
            gain = (sum(gains) / seeds).to_numpy()
            means = gain[rng.integers(0, len(gain), (draws, len(gain)))].mean(axis=1)
            low, high = np.percentile(means, [2.5, 97.5])
            out[(subset, x, y)] = (float(gain.mean()), float(low), float(high))
            each = " ".join(f"{g.mean():+.4f}" for g in gains)
            log(
                f"{y} - {x}: {gain.mean():+.4f} (per seed {each}); "
                f"95 % over {len(gain)} users [{low:+.4f}, {high:+.4f}]"
            )
    return out
