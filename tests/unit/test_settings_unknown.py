"""A misspelt role setting is refused with one line naming it, instead of being ignored."""

from __future__ import annotations

import pytest

from batch.settings import BatchSettings
from batch.sink.settings import SinkSettings
from schemas.errors import ConfigError
from schemas.settings import TopicSettings, load
from serving.settings import ServingSettings
from streams.settings import StreamsSettings


@pytest.mark.parametrize(
    ("cls", "typo", "meant"),
    [
        (StreamsSettings, "NEARLINE_WORKER_TOPN", "NEARLINE_WORKER_TOP_N"),
        (ServingSettings, "NEARLINE_SERVING_DEFAULT_KK", "NEARLINE_SERVING_DEFAULT_K"),
        (SinkSettings, "NEARLINE_SINK_BATCHSIZE", "NEARLINE_SINK_BATCH_SIZE"),
        (BatchSettings, "NEARLINE_BATCH_HOLDOUTS", "NEARLINE_BATCH_HOLDOUT"),
    ],
)
def test_an_unknown_role_variable_is_refused_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, cls: type, typo: str, meant: str
) -> None:
    monkeypatch.setenv(typo, "5")
    with pytest.raises(ConfigError, match=f"{typo} \\(did you mean {meant}\\?\\)"):
        load(cls)


def test_known_variables_and_other_roles_variables_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEARLINE_WORKER_TOP_N", "7")
    monkeypatch.setenv("NEARLINE_SERVING_PORTT", "1")  # another role's typo is that role's
    monkeypatch.setenv("NEARLINE_TOPIC_PREFIX", "p.")
    assert load(StreamsSettings).top_n == 7
    assert load(TopicSettings).topic_prefix == "p."


def test_the_shared_prefix_is_not_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    # NEARLINE_ alone is shared by the stack, topic and database settings.
    monkeypatch.setenv("NEARLINE_SOMETHING_ELSE", "x")
    monkeypatch.delenv("NEARLINE_TOPIC_PREFIX", raising=False)
    assert load(TopicSettings).topic_prefix == ""
