"""The markdown report and its PNG chart."""

from __future__ import annotations

from pathlib import Path

from batch.evaluation import PUBLISHED_UA, Metrics, compare
from batch.report import write_report


def test_report_compares_candidate_current_and_reference(tmp_path: Path) -> None:
    candidate = Metrics(0.1234, 0.2, 0.3, 0.91, 0.4, 10, 943)
    current = Metrics(0.2, 0.2, 0.3, 0.92, 0.4, 10, 943)
    verdict = compare(candidate, current, tolerance=0.03)
    files = write_report(
        tmp_path / "out", candidate, current, verdict, PUBLISHED_UA, {"train": 1.5}
    )
    text = files.markdown.read_text()
    assert "| precision@10 | 0.1234 | 0.2000 | 0.1100 |" in text
    assert "| auc | 0.9100 | 0.9200 | 0.9000 |" in text
    assert "| recall@10 | 0.2000 | 0.2000 | - |" in text
    assert "Gate: FAIL" in text and "| train | 1.50 |" in text
    assert files.chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert files.chart.stat().st_size > 5_000
