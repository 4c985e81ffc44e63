"""`concierge train`: every model the settings use, trained when missing or out of date and
kept when current, as a second `make chat` relies on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.infra.settings import Settings
from core.turn.taxonomy import DEFAULT_PATH
from tests.workers.conftest import import_tiny_store, write_store
from workers.cli import train_main


def status(out: str) -> dict[str, str]:
    """The summary lines `concierge train` ends with: model name -> what happened."""
    found = {}
    for line in out.splitlines():
        name, _, rest = line.partition(" ")
        if name in ("nlu", "recommender") and rest.strip():
            found[name] = rest.split(maxsplit=1)[1]
    return found


@pytest.mark.timeout(600)
def test_train_builds_what_is_missing_and_keeps_what_is_current(
    nlu_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    write_store(store)
    nlu = tmp_path / "models" / "nlu"
    shutil.copytree(nlu_model_dir, nlu)  # a current model, copied: this test may rebuild it
    settings = Settings(models_dir=tmp_path / "models", store_url=import_tiny_store(store),
                        nlu_dir=nlu, log_level="WARNING")

    assert train_main([], settings) == 0
    first = status(capsys.readouterr().out)
    assert first["nlu"] == "current"
    assert first["recommender"].startswith("trained in") and "(was missing)" in first["recommender"]
    assert (settings.recommender_dir / "model.pt").exists()

    assert train_main(["--check"], settings) == 0  # a second run trains nothing
    assert status(capsys.readouterr().out) == {"nlu": "current", "recommender": "current"}

    # New training data in the store: one more purchase. The recommender is out of date, the
    # NLU is not.
    with (store / "interactions.csv").open("a", encoding="utf-8") as handle:
        handle.write("C9999,P0001,1800000000,5\n")
    import_tiny_store(store)
    assert train_main(["--check"], settings) == 1
    assert status(capsys.readouterr().out) == {"nlu": "current", "recommender": "out of date"}

    # An edited taxonomy makes the NLU out of date (checked only: retraining is tested in
    # tests/workers/test_nlu.py).
    taxonomy = tmp_path / "intents.yaml"
    taxonomy.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + "\n# edited\n",
                        encoding="utf-8")
    edited = settings.model_copy(update={"nlu_taxonomy": taxonomy})
    assert train_main(["--check"], edited) == 1
    assert status(capsys.readouterr().out)["nlu"] == "out of date"

    assert train_main([], settings) == 0
    again = status(capsys.readouterr().out)
    assert again["nlu"] == "current" and "(was out of date)" in again["recommender"]
    assert train_main(["--check"], settings) == 0


def test_train_check_reports_missing_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    write_store(store)
    settings = Settings(models_dir=tmp_path / "models", store_url=import_tiny_store(store),
                        log_level="WARNING")
    assert train_main(["--check"], settings) == 1
    assert status(capsys.readouterr().out) == {"nlu": "missing", "recommender": "missing"}
    assert not (tmp_path / "models").exists()


def test_train_says_which_data_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(models_dir=tmp_path / "models", recommender_catalog="amazon-beauty",
                        data_dir=tmp_path / "no-data", log_level="WARNING")
    assert train_main([], settings) == 2
    assert "amazon_beauty" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
