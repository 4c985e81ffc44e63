"""Celery scoring through real worker processes and the Redis on 127.0.0.1 (DB 11).

No eager mode: each test starts `celery -A workers.app worker` subprocesses, sends jobs by
name through `CeleryRecommender`, and kills workers with SIGKILL where the test says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.infra.settings import Settings
from core.turn.recommendation import RecommendationRequest, RecommenderUnavailable
from tests.workers.conftest import TinyStore
from workers.app import SCORE_MANY_TASK, build_app
from workers.client import CeleryRecommender

REDIS_URL = "redis://127.0.0.1:6379/11"
REPO = Path(__file__).resolve().parents[2]
VISIBILITY_S = 4.0
# A queue of this test run's own: other runs sharing the Redis DB neither take nor give jobs.
QUEUE = f"concierge.score.test-{uuid.uuid4().hex[:8]}"

pytestmark = pytest.mark.slow


def _settings(store: TinyStore, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "celery_broker_url": REDIS_URL,
        "celery_result_backend": REDIS_URL,
        "demo_dir": store.folder,
        "recommender_dir": store.model_dir,
        "score_timeout_s": 20.0,
        "celery_queue": QUEUE,
        "broker_visibility_timeout_s": VISIBILITY_S,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture()
def clean_redis() -> Iterator[redis.Redis]:
    """Removes this run's queue and results afterwards; other runs' keys are left alone."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(match=f"*{QUEUE}*"):
        client.delete(key)
    client.close()


class Worker:
    """One `celery worker` process group (main process plus one pool child)."""

    def __init__(self, store: TinyStore, log: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CONCIERGE_CELERY_BROKER_URL": REDIS_URL,
            "CONCIERGE_CELERY_RESULT_BACKEND": REDIS_URL,
            "CONCIERGE_DEMO_DIR": str(store.folder),
            "CONCIERGE_RECOMMENDER_DIR": str(store.model_dir),
            "CONCIERGE_BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
            "CONCIERGE_CELERY_QUEUE": QUEUE,
            "CONCIERGE_TASK_TIME_LIMIT_S": "300",
            "HF_HUB_OFFLINE": "1",
        }
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "--concurrency=1",
                "--pool=prefork",
                "--loglevel=INFO",
                "-n",
                self.name,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, app: object, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            replies = app.control.ping(destination=[self.name], timeout=0.5)  # type: ignore[attr-defined]
            if replies:
                return
        raise AssertionError(f"worker not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker: no chance to acknowledge, reject or requeue anything."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def test_scored_request_round_trip(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    settings = _settings(tiny_store)
    app = build_app(settings)
    workers.append(Worker(tiny_store, tmp_path / "worker.log"))
    workers[0].wait_ready(app)
    client = CeleryRecommender(settings, app)
    request = RecommendationRequest(
        user_id="C0003", text="waterproof rain jacket", budget_max=120.0, k=3
    )
    suggestions = client.recommend(request)
    assert len(suggestions) == 3
    products = {str(p["id"]): p for p in tiny_store.products}
    for suggestion in suggestions:
        product = products[suggestion.item_id]
        assert suggestion.title == product["title"]
        assert suggestion.price == product["price"] <= 120.0
        assert int(product["stock"]) > 0  # type: ignore[call-overload]
        assert suggestion.evidence.price == product["price"]
        assert suggestion.evidence.budget_max == 120.0
    # The text steered the ranking: the best suggestion is a rain jacket.
    assert products[suggestions[0].item_id]["subcategory"] == "rain-jackets"


def test_job_of_a_killed_worker_is_completed_by_a_restarted_worker(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    settings = _settings(tiny_store)
    app = build_app(settings)
    first = Worker(tiny_store, tmp_path / "first.log")
    workers.append(first)
    first.wait_ready(app)
    # A bulk job long enough to be caught mid-run: distinct texts, each encoded by MiniLM.
    requests = [
        RecommendationRequest(user_id=f"C{n % 100 + 1:04d}", text=f"gift idea number {n}", k=3)
        for n in range(400)
    ]
    result = app.send_task(SCORE_MANY_TASK, args=[[r.model_dump(mode="json") for r in requests]])
    deadline = time.monotonic() + 60
    running = False
    while time.monotonic() < deadline and not running:
        active = app.control.inspect(destination=[first.name], timeout=0.5).active() or {}
        running = any(job["id"] == result.id for jobs in active.values() for job in jobs)
    assert running, "the job never started"
    time.sleep(0.5)
    first.kill()
    assert not result.ready()
    # The job was not acknowledged, so after the visibility timeout a new worker gets it.
    second = Worker(tiny_store, tmp_path / "second.log")
    workers.append(second)
    second.wait_ready(app)
    batches = result.get(timeout=240)
    result.forget()
    assert len(batches) == len(requests)
    assert all(len(batch) == 3 for batch in batches)
    assert "workers.score_many" in (tmp_path / "second.log").read_text()


def test_job_of_a_killed_pool_child_is_redelivered_at_once(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    settings = _settings(tiny_store)
    app = build_app(settings)
    worker = Worker(tiny_store, tmp_path / "worker.log")
    workers.append(worker)
    worker.wait_ready(app)
    requests = [
        RecommendationRequest(user_id="C0002", text=f"warm present {n}", k=2) for n in range(300)
    ]
    result = app.send_task(SCORE_MANY_TASK, args=[[r.model_dump(mode="json") for r in requests]])
    deadline = time.monotonic() + 60
    child = None
    while time.monotonic() < deadline and child is None:
        active = app.control.inspect(destination=[worker.name], timeout=0.5).active() or {}
        for jobs in active.values():
            child = next((job["worker_pid"] for job in jobs if job["id"] == result.id), None)
    assert child is not None, "the job never started"
    time.sleep(0.5)
    os.kill(child, signal.SIGKILL)
    assert not result.ready()
    # The main process sees its child die, rejects the job back to the queue
    # (task_reject_on_worker_lost), forks a new child, and that child runs it again.
    batches = result.get(timeout=240)
    result.forget()
    assert len(batches) == len(requests)
    assert worker.process.poll() is None
    assert "SIGKILL" in worker.log.read_text()  # the child really died mid-job


def test_no_worker_means_unavailable_within_the_timeout(
    tiny_store: TinyStore, clean_redis: redis.Redis
) -> None:
    settings = _settings(tiny_store, score_timeout_s=1.5)
    client = CeleryRecommender(settings)
    started = time.monotonic()
    with pytest.raises(RecommenderUnavailable, match="no scoring worker"):
        client.recommend(RecommendationRequest(user_id="C0001", text="boots"))
    assert time.monotonic() - started < 1.5 + 1.5


def test_broker_down_means_unavailable_quickly(tiny_store: TinyStore) -> None:
    down = "redis://127.0.0.1:1/11"  # nothing listens on port 1
    settings = _settings(
        tiny_store, celery_broker_url=down, celery_result_backend=down, score_timeout_s=2.0
    )
    client = CeleryRecommender(settings)
    started = time.monotonic()
    with pytest.raises(RecommenderUnavailable, match="broker"):
        client.recommend(RecommendationRequest(user_id="C0001", text="boots"))
    assert time.monotonic() - started < 2.0 + 3.0


def test_importing_the_client_does_not_import_torch() -> None:
    code = (
        "import sys, workers.client, workers.app\n"
        "heavy = [m for m in ('torch', 'transformers', 'workers.tasks') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
