"""`nearline train` option parsing: schedules and configuration files."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.command import parse_duration, train_config
from batch.settings import BatchSettings
from schemas.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("1.5d", 129600), (" 2H ", 7200)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "0m", "-1h", "1w", "soon"])
def test_bad_durations_are_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected a positive duration"):
        parse_duration(text)


def test_config_file_overrides_the_preset(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"epochs": 3}')
    config = train_config(BatchSettings(preset="movielens-implicit", config_file=path))
    assert config.epochs == 3 and config.no_components == 10 and not config.use_item_features
    assert train_config(BatchSettings()).epochs == 10


@pytest.mark.parametrize("body", ['{"epochs": 0}', '{"epoch": 3}', "not json"])
def test_bad_config_file_is_a_config_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(body)
    with pytest.raises(ConfigError, match="training config"):
        train_config(BatchSettings(config_file=path))
