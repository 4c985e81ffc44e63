"""The train and eval commands end to end on the tiny store: table, JSON line, HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.infra.settings import Settings
from tests.workers.conftest import TinyStore
from workers.recommender.cli import eval_recommender_main, train_recommender_main


def test_train_then_eval_with_baselines_and_cold_start(
    tiny_store: TinyStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(models_dir=tmp_path / "models")
    files = [
        "--interactions",
        str(tiny_store.folder / "interactions.csv"),
        "--items",
        str(tiny_store.folder / "catalog.jsonl"),
    ]
    small = ["--epochs", "4", "--dim", "16", "--layers", "1", "--quiet", "--max-len", "10"]
    assert train_recommender_main([*files, *small, "--out", str(tmp_path / "main")], settings) == 0
    ids_only = [*files, *small, "--id-only", "--out", str(tmp_path / "ids")]
    assert train_recommender_main(ids_only, settings) == 0
    assert (
        train_recommender_main(
            [*files, *small, "--cold-fraction", "0.2", "--out", str(tmp_path / "cold")], settings
        )
        == 0
    )
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["epochs"] >= 1 and trained["train_seconds"] > 0

    report = tmp_path / "report.html"
    code = eval_recommender_main(
        [
            *files,
            "--model",
            str(tmp_path / "main"),
            "--baseline",
            str(tmp_path / "ids"),
            "--cold-model",
            str(tmp_path / "cold"),
            "--report",
            str(report),
        ],
        settings,
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert any(line.startswith("main ") and "excluded" in line for line in out)
    assert any(line.startswith("id-only SASRec") for line in out)
    assert any(line.startswith("popularity") for line in out)
    for key in ("main_excluded", "main_plain", "idonly_excluded", "popularity_excluded"):
        figures = summary[key]
        assert set(figures) == {"hr@10", "ndcg@10", "hr@20", "ndcg@20", "coverage@10"}
        assert 0 <= figures["ndcg@10"] <= figures["hr@10"] <= figures["hr@20"] <= 1
    assert summary["cold"]["cold_items"] == 16 and summary["cold"]["cold_cases"] > 0
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "Training curves" in html and "Cold start" in html
