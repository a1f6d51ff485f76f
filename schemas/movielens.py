"""MovieLens-100K, read from the files the PyPI wheel ``recbole==1.2.1`` ships.

GroupLens's licence forbids redistributing the data, so nearline never commits it: install
the wheel (``pip install --no-deps recbole==1.2.1``; ``deploy/setup.sh`` does) and this module
finds the files through the package metadata. ``recbole`` itself is never imported.

Each rating becomes a :class:`~schemas.events.ViewEvent`:

- ``rating`` is the rating (1-5), ``progress`` 1.0 (a rated film was watched);
- ``duration_ms`` is 0, because the data has no watch time;
- ``ts`` is the rating's time in epoch milliseconds;
- the context is device ``web`` (ratings were given on the MovieLens site), with one session
  per user per UTC day;
- ``event_id`` is a UUIDv5 of user, item and time, so a second replay produces the same ids
  and the idempotent store keeps exactly 100,000 rows.

Example::

    from schemas.movielens import load
    ml = load()
    len(ml.ratings), ml.ratings.user_id.nunique(), ml.ratings.item_id.nunique()
    # (100000, 943, 1682)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pandas as pd

from schemas.errors import NearlineError

DISTRIBUTION = "recbole"
VERSION = "1.2.1"
FOLDER = "recbole/dataset_example/ml-100k"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
# Fixed namespace: ids derived from it are stable across machines and replays.
EVENT_NAMESPACE = uuid.UUID("5b0f7a3e-2f7c-4d4e-9b39-6e6561726c69")


class DatasetMissing(NearlineError):
    """The MovieLens files are not installed."""


@dataclass(frozen=True)
class MovieLens:
    ratings: pd.DataFrame
    """user_id, item_id (str), rating (float), ts (int epoch s); in file order."""
    items: pd.DataFrame
    """item_id, title, year (nullable int), genres (list of str)."""
    users: pd.DataFrame
    """user_id, age, gender, occupation, zip_code."""


def locate() -> Path:
    """The folder holding ``ml-100k.inter``, ``.item`` and ``.user``."""
    try:
        dist = distribution(DISTRIBUTION)
    except PackageNotFoundError:
        raise DatasetMissing(
            f"MovieLens-100K is not installed; install it with `{INSTALL_HINT}` "
            "(deploy/setup.sh does this)"
        ) from None
    folder = Path(str(dist.locate_file(FOLDER)))
    if not (folder / "ml-100k.inter").is_file():
        raise DatasetMissing(
            f"{DISTRIBUTION} {dist.version} has no {FOLDER}/ml-100k.inter; install `{INSTALL_HINT}`"
        )
    return folder


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    # recbole's headers carry types ("user_id:token"); keep the names only.
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def load(folder: Path | None = None) -> MovieLens:
    folder = folder or locate()
    raw = _read(folder / "ml-100k.inter")
    ratings = pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "item_id": raw["item_id"],
            "rating": raw["rating"].astype("float64"),
            "ts": raw["timestamp"].astype("float64").astype("int64"),
        }
    )
    raw_items = _read(folder / "ml-100k.item")
    items = pd.DataFrame(
        {
            "item_id": raw_items["item_id"],
            "title": raw_items["movie_title"],
            "year": pd.to_numeric(raw_items["release_year"], errors="coerce").astype("Int64"),
            "genres": [g.split() for g in raw_items["class"]],
        }
    )
    raw_users = _read(folder / "ml-100k.user")
    users = pd.DataFrame(
        {
            "user_id": raw_users["user_id"],
            "age": pd.to_numeric(raw_users["age"], errors="coerce").astype("Int64"),
            "gender": raw_users["gender"],
            "occupation": raw_users["occupation"],
            "zip_code": raw_users["zip_code"],
        }
    )
    return MovieLens(ratings, items, users)


def event_id(user_id: str, item_id: str, ts_seconds: int) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"ml-100k/{user_id}/{item_id}/{ts_seconds}"))


def in_time_order(ratings: pd.DataFrame) -> pd.DataFrame:
    """Ratings sorted by time; ties keep file order (a stable sort)."""
    return ratings.sort_values("ts", kind="stable").reset_index(drop=True)


def view_events(ratings: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """ViewEvent records (wire dicts) for ``ratings``, in the given row order."""
    for user, item, rating, ts in zip(
        ratings["user_id"], ratings["item_id"], ratings["rating"], ratings["ts"], strict=True
    ):
        ts = int(ts)
        yield {
            "event_id": event_id(user, item, ts),
            "user_id": user,
            "ts": ts * 1000,
            "context": {
                "session_id": f"ml-{user}-{ts // 86400}",
                "device": "web",
                "locale": None,
                "country": None,
            },
            "item_id": item,
            "duration_ms": 0,
            "progress": 1.0,
            "rating": float(rating),
        }
