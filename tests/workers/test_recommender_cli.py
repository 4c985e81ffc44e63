"""`concierge worker` and `concierge flower` hand Celery what it should get: their own options
parsed (with the settings' defaults), every other option passed on unchanged. `concierge bench
recommender` measures the settings' model when no --model is given."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from core.infra.settings import Settings
from tests.workers.conftest import TinyStore
from workers import dashboard
from workers.recommender.cli import bench_recommender_main, worker_main


class RecordingApp:
    """Stands in for the Celery app: records the argv a worker or Flower would start with."""

    def __init__(self) -> None:
        self.argv: list[str] = []

    def worker_main(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)

    def start(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> RecordingApp:
    recording = RecordingApp()
    monkeypatch.setattr("workers.app.build_app", lambda settings: recording)
    return recording


def test_worker_takes_concurrency_from_settings_or_the_command(app: RecordingApp) -> None:
    settings = Settings(worker_concurrency=3, log_level="WARNING")
    assert worker_main(["--pool=prefork", "--hostname", "w1@host"], settings) == 0
    assert app.argv == ["worker", "--loglevel=WARNING", "--pool=prefork", "--hostname", "w1@host",
                        "--concurrency=3"]
    assert worker_main(["-c", "2", "--include=tests.workers.slow_job"], settings) == 0
    assert app.argv[-2:] == ["--include=tests.workers.slow_job", "--concurrency=2"]
    assert worker_main(["--concurrency=5"], settings) == 0
    assert app.argv.count("--concurrency=5") == 1 and len(app.argv) == 3


def test_flower_binds_loopback_unless_told(app: RecordingApp) -> None:
    settings = Settings(log_level="WARNING")
    assert dashboard.main(["--no-auth"], settings) == 0
    assert app.argv == ["flower", "--address=127.0.0.1", "--port=5555"]
    assert dashboard.main(["--port", "6000", "--basic-auth=a:b"], settings) == 0
    assert app.argv == ["flower", "--address=127.0.0.1", "--port=6000", "--basic-auth=a:b"]


def test_flower_logs_in_with_the_settings_login(app: RecordingApp) -> None:
    settings = Settings(log_level="WARNING", flower_user="ops", flower_password="pw0")
    assert dashboard.main(["--address=0.0.0.0"], settings) == 0
    assert app.argv == ["flower", "--address=0.0.0.0", "--port=5555", "--basic-auth=ops:pw0"]
    app.argv = []
    assert dashboard.main(["--address=0.0.0.0", "--no-auth"], Settings(log_level="WARNING")) == 2
    assert app.argv == []  # Flower never started


def test_bench_recommender_defaults_to_the_settings_model(
    tiny_store: TinyStore, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(store_url=tiny_store.store_url, recommender_dir=tiny_store.model_dir,
                        log_level="WARNING")
    assert bench_recommender_main(["--no-celery", "--requests", "5"], settings) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["items"] == len(tiny_store.products) and figures["requests"] == 5
