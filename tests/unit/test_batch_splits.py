"""Hold-out splits: the classic ua split of ML-100K and the per-user recency split."""

from __future__ import annotations

import pandas as pd

from batch.splits import recent_split, ua_split
from schemas import movielens


def test_ua_split_holds_out_each_users_first_ten_ratings_in_file_order() -> None:
    ratings = movielens.load().ratings
    train, test = ua_split(ratings)
    assert len(test) == 9_430 and len(train) == 90_570
    assert (test.groupby("user_id").size() == 10).all()
    assert test.user_id.nunique() == 943
    first_user = ratings.user_id.iloc[0]
    expected = ratings.loc[ratings.user_id == first_user].head(10)
    assert test.loc[test.user_id == first_user].index.tolist() == expected.index.tolist()
    assert not set(train.index) & set(test.index)


def test_recent_split_holds_out_latest_items_with_all_their_events() -> None:
    events = pd.DataFrame(
        {
            "user_id": ["u"] * 5 + ["short"],
            "item_id": ["a", "b", "c", "a", "d", "a"],
            "event_type": "view",
            "ts": [1, 2, 3, 4, 0, 9],
        }
    )
    train, test = recent_split(events, n=1)
    # "a" was touched last (ts 4), so both of its events go to test.
    assert sorted(test.ts.tolist()) == [1, 4]
    assert set(train.item_id) == {"b", "c", "d", "a"}
    assert "short" in set(train.user_id) and "short" not in set(test.user_id)
    train2, test2 = recent_split(events, n=2)
    assert set(test2.item_id) == {"a", "c"}
