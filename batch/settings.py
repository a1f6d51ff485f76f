"""Settings of the offline job (``NEARLINE_BATCH_*``), read once at start-up.

Training knobs live in :class:`~batch.config.TrainConfig`; a JSON file given with
``NEARLINE_BATCH_CONFIG_FILE`` (or ``nearline train --config``) overrides its defaults.

Example::

    settings = load(BatchSettings)      # NEARLINE_BATCH_HOLDOUT=ua ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEARLINE_BATCH_", extra="ignore")

    holdout: Literal["recent", "ua"] = "recent"
    """``recent``: each user's most recent N items; ``ua``: ML-100K's first-10-in-file-order."""
    holdout_n: int = Field(10, gt=0)
    preset: Literal["default", "movielens-implicit"] = "default"
    """``movielens-implicit`` is LightFM's published example (WARP, lr 0.05, 10 components,
    10 epochs, every rating a positive, no metadata)."""
    config_file: Path | None = None
    """JSON object of TrainConfig fields applied over the preset."""
    report_dir: Path = Path("reports")
    """Each run writes ``<report_dir>/model-v<version>/report.md`` and ``metrics.png``."""
    min_events: int = Field(20, gt=0)
    """A snapshot with fewer positive events than this is refused as too small."""
    scan_timeout_s: float = Field(60.0, gt=0)
