"""Safe model updates: versions switched atomically, a retraining cycle that promotes only a
better model, rollback, and scoring that follows a promotion without a restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from core.infra.settings import Settings
from core.shopdb.database import ShopDatabase
from core.turn.recommendation import RecommendationRequest
from tests.processes import clean_env
from tests.workers.conftest import TinyStore
from workers.recommender.cli import model_list_main, model_rollback_main
from workers.recommender.data import InteractionData, load_store
from workers.recommender.model import RecommenderConfig
from workers.recommender.retrain import retrain, shuffled
from workers.recommender.service import ScoringService
from workers.recommender.split import leave_one_out
from workers.recommender.train import TrainConfig, train
from workers.recommender.versions import Registry, ServedModel

REDIS_URL = "redis://127.0.0.1:6379/11"  # the Celery tests' database; a queue of its own


def fake_model(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"marker": marker}))
    return folder


def test_promotion_and_rollback_switch_the_served_folder(tmp_path: Path) -> None:
    serving = fake_model(tmp_path / "recommender", "first")
    registry = Registry(serving)
    watcher = ServedModel(serving, check_s=0.0)
    assert registry.served() is None and not watcher.changed()
    second = fake_model(registry.new_folder("b"), "second")
    registry.promote(second.name)
    assert serving.is_symlink() and registry.served() == second.name
    assert json.loads((serving / "config.json").read_text())["marker"] == "second"
    assert watcher.changed() and not watcher.changed()
    third = fake_model(registry.new_folder("c"), "third")
    registry.promote(third.name)
    assert registry.rollback() == second.name
    assert registry.rollback().endswith("-initial")  # the folder from before versions
    assert json.loads((serving / "config.json").read_text())["marker"] == "first"
    with pytest.raises(ValueError, match="no earlier version"):
        registry.rollback()
    assert [e["action"] for e in registry.history()] == [
        "adopt", "promote", "promote", "rollback", "rollback"]
    with pytest.raises(ValueError, match="no trained model"):
        registry.promote(registry.new_folder("empty").name)


def test_the_rollback_command_says_when_there_is_nothing_to_go_back_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(recommender_dir=fake_model(tmp_path / "recommender", "only"))
    assert model_rollback_main([], settings) == 2
    assert "no earlier version" in capsys.readouterr().err
    assert model_list_main([], settings) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["served"] is None


def train_into(folder: Path, data: InteractionData, seed: int = 7) -> None:
    split = leave_one_out(data, seed=seed)
    train(data, RecommenderConfig(n_items=data.n_items, dim=32, layers=1, heads=2, max_len=10),
          TrainConfig(max_epochs=6, batch_size=32, patience=6, val_cases=200, progress=False,
                      seed=seed),
          out=folder, split=split)


@pytest.mark.slow
def test_a_cycle_refuses_a_worse_model_promotes_a_better_one_and_scoring_follows(
    tiny_store: TinyStore, tmp_path: Path
) -> None:
    database = ShopDatabase(tiny_store.store_url)
    data = load_store(database)
    database.close()
    serving = tmp_path / "models" / "recommender"
    shutil.copytree(tiny_store.model_dir, serving)
    settings = Settings(recommender_dir=serving, models_dir=tmp_path / "models",
                        store_url=tiny_store.store_url, retrain_budget_min=0.5,
                        model_check_s=0.0)
    registry = Registry(serving)
    refused = retrain(settings, data, worse=True)
    assert not refused.promoted and refused.gain_ci95[2] < 0  # clearly worse
    assert registry.served() is None and registry.versions() == []  # nothing kept of it
    # A broken model in service (trained on shuffled purchases): the regular cycle replaces it.
    shutil.rmtree(serving)
    train_into(serving, shuffled(data, 3))
    service = ScoringService.from_settings(settings)
    before = service.model
    ask = RecommendationRequest(user_id="C0001", text="rain jacket", k=3)
    assert service.recommend(ask)
    promoted = retrain(settings, data)
    assert promoted.promoted and promoted.gain_ci95[1] > 0, promoted.as_json()
    assert registry.served() == promoted.candidate
    assert set(promoted.seconds) == {"prepare", "train", "evaluate", "promote"}
    assert service.recommend(ask) and service.model is not before  # loaded, no restart
    assert registry.rollback().endswith("-initial")
    service.recommend(ask)
    assert service.served is not None and service.served.version is not None
    assert [e["action"] for e in registry.history()] == [
        "refuse", "adopt", "promote", "rollback"]


@pytest.mark.slow
def test_the_beat_schedule_runs_the_cycle_in_a_worker_of_its_own(
    tiny_store: TinyStore, tmp_path: Path
) -> None:
    """`concierge beat` (Celery beat with its worker, on the machine's Redis) runs a cycle on
    schedule: its verdict lands in the version history."""
    serving = tmp_path / "models" / "recommender"
    shutil.copytree(tiny_store.model_dir, serving)
    queue = f"concierge.score.test-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        models_dir=tmp_path / "models", recommender_dir=serving, store_url=tiny_store.store_url,
        celery_broker_url=REDIS_URL, celery_result_backend=REDIS_URL, celery_queue=queue,
        retrain_every_s="2", retrain_budget_min="0.2", log_level="WARNING",
    )
    log = tmp_path / "beat.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bots.cli", "beat", "-n", f"beat-{queue}@localhost",
         "--without-gossip", "--without-mingle"],
        cwd=tmp_path, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    registry = Registry(serving)
    try:
        deadline = time.monotonic() + 120
        while not registry.history():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        client.close()
    first = registry.history()[0]
    assert first["action"] in ("refuse", "adopt"), first  # a verdict, either way
