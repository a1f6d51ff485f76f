"""The offline job's knobs, in one typed, frozen object with documented defaults.

Every field has a default chosen on ML-100K (see ``benchmarks/train_quality.py``), and
unknown keys are rejected so a typo fails with one clear line instead of being ignored.

Example::

    from batch.config import TrainConfig
    config = TrainConfig(epochs=20, use_user_features=False)
    reproduction = TrainConfig.lightfm_movielens_implicit()
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Loss = Literal["warp", "bpr", "logistic", "warp-kos"]


class TrainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- interactions: how events become positives and sample weights ---
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 1.0, "click": 0.5, "browse_impression": 0.0}
    )
    """Weight of one event per event type. 0 drops the type: an impression is not a positive."""
    rating_scaling: bool = False
    """Multiply a rated event's weight by rating / rating_max (off: a rating is a plain view)."""
    rating_max: float = Field(default=5.0, gt=0)
    min_rating: float | None = None
    """Drop rated events below this rating (None keeps them all, as LightFM's example does)."""
    duration_full_ms: int | None = Field(default=1_800_000, gt=0)
    """A view this long counts fully; shorter ones scale down linearly to ``duration_floor``.
    Durations <= 0 or missing mean "unknown" (ML-100K has none) and leave the weight as is."""
    duration_floor: float = Field(default=0.25, ge=0, le=1)
    max_weight: float = Field(default=5.0, gt=0)
    """Cap on the summed weight of one (user, item): a binge must not dominate the loss."""

    # --- features ---
    use_item_features: bool = True
    """Genres and release decade beside the per-item identity feature."""
    year_bucket: int = Field(default=10, gt=0)
    """Width in years of the release-year bucket feature (10: decades)."""
    use_user_features: bool = False
    """Age bucket, gender, occupation beside the per-user identity. Off by default: on ML-100K
    they cost precision for warm users, and nearline folds users in from events anyway."""
    normalise_features: bool = False
    """Scale each feature row to sum to 1, as ``lightfm.data.Dataset`` does. Off: it shrinks
    an item's own identity weight to 1/(1 + its metadata), which slowed learning on ML-100K
    (ua split, 32 components, 10 epochs: precision@10 0.221 normalised vs 0.243 not)."""

    # --- model ---
    loss: Loss = "warp"
    no_components: int = Field(default=32, gt=0)
    learning_rate: float = Field(default=0.05, gt=0)
    epochs: int = Field(default=10, gt=0)
    item_alpha: float = Field(default=0.0, ge=0)
    user_alpha: float = Field(default=0.0, ge=0)
    max_sampled: int = Field(default=10, gt=0)
    random_state: int = 42
    num_threads: int | None = Field(default=None, gt=0)
    """None: every core this process may run on."""
    deterministic: bool = False
    """Train on one thread so a seed reproduces the embeddings bit for bit. LightFM's
    multi-threaded SGD is Hogwild (lock-free, racy), so with >1 thread a seed fixes the
    initialisation and shuffles but not the result."""

    # --- evaluation and batch results ---
    k: int = Field(default=10, gt=0)
    """Cut-off of precision/recall/NDCG/coverage."""
    top_n: int = Field(default=50, gt=0)
    similar_k: int = Field(default=20, gt=0)
    n_clusters: int = Field(default=24, gt=0)
    gate_metrics: tuple[str, ...] = ("precision", "auc")
    """Metrics the candidate must not lose on: precision@k is what users see at the top of a
    list, AUC guards the rest of the ranking (similar items, fallbacks)."""
    gate_tolerance: float = Field(default=0.03, ge=0, lt=1)
    """Relative loss allowed on each gate metric (0.03: 3 % below the current model)."""

    def threads(self) -> int:
        """Threads to train with: 1 when deterministic, else the configured or available cores."""
        if self.deterministic:
            return 1
        return self.num_threads or len(os.sched_getaffinity(0))

    @classmethod
    def lightfm_movielens_implicit(cls, **overrides: object) -> TrainConfig:
        """LightFM's published ``movielens`` implicit example: WARP, learning_rate 0.05, the
        default 10 components, 10 epochs, every rating a positive of weight 1, no metadata."""
        settings: dict[str, object] = {
            "event_weights": {"view": 1.0},
            "duration_full_ms": None,
            "use_item_features": False,
            "use_user_features": False,
            "no_components": 10,
            "learning_rate": 0.05,
            "epochs": 10,
        }
        settings.update(overrides)
        return cls.model_validate(settings)
