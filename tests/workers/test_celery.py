"""Celery scoring through real worker processes and the Redis on 127.0.0.1 (DB 11).

No eager mode: each test starts `celery -A workers.app worker` subprocesses, sends jobs by
name through `CeleryRecommender`, and kills workers with SIGKILL where the test says so.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.result import AsyncResult

from core.infra.settings import Settings
from core.shopdb.database import ShopDatabase
from core.shopdb.learning import LearningStore
from core.turn.recommendation import RecommendationRequest, RecommenderUnavailable
from tests.processes import clean_env
from tests.workers.conftest import TinyStore
from tests.workers.slow_job import SLOW_TASK
from workers.app import build_app
from workers.client import CeleryLearner, CeleryRecommender
from workers.recommender.bandit import STATE

REDIS_URL = "redis://127.0.0.1:6379/11"
VISIBILITY_S = 4.0
JOB_S = 5.0  # the slow job's length: long enough to be killed in the middle
# A queue of this test run's own: other runs sharing the Redis DB neither take nor give jobs.
QUEUE = f"concierge.score.test-{uuid.uuid4().hex[:8]}"

pytestmark = pytest.mark.slow


def _settings(store: TinyStore, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "celery_broker_url": REDIS_URL,
        "celery_result_backend": REDIS_URL,
        "store_url": store.store_url,
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

    def __init__(self, store: TinyStore, log: Path, **settings: str) -> None:
        env = clean_env(
            **settings,
            celery_broker_url=REDIS_URL,
            celery_result_backend=REDIS_URL,
            store_url=store.store_url,
            recommender_dir=store.model_dir,
            broker_visibility_timeout_s=str(VISIBILITY_S),
            celery_queue=QUEUE,
            task_time_limit_s="300",
        )
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
                "--include=tests.workers.slow_job",  # a job that shows when it is under way
            ],
            cwd=log.parent,
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


def test_with_learning_on_a_worker_logs_slates_and_learns_from_their_outcomes(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    copy = tmp_path / "store.sqlite3"
    shutil.copy(tiny_store.store_url.removeprefix("sqlite:///"), copy)
    store = dataclasses.replace(tiny_store, store_url=f"sqlite:///{copy}")
    settings = _settings(store)
    app = build_app(settings)
    workers.append(Worker(store, tmp_path / "worker.log", bandit="true",
                          bandit_refresh_s="0"))
    workers[0].wait_ready(app)
    request = RecommendationRequest(user_id="C0003", text="waterproof rain jacket", k=3)
    suggestions = CeleryRecommender(settings, app).recommend(request)
    slate = suggestions[0].slate
    assert slate and all(s.slate == slate and s.propensity for s in suggestions)
    CeleryLearner(settings, app).close(slate, 2, "details")
    learning = LearningStore(ShopDatabase(store.store_url))
    deadline = time.monotonic() + 30
    while (learning.bandit_state(STATE) or {}).get("version") != 1:
        assert time.monotonic() < deadline, workers[0].log.read_text()[-2000:]
        time.sleep(0.1)
    (closed,) = list(learning.slates())
    assert closed.id == slate and closed.position == 2 and closed.kind == "details"
    assert (learning.bandit_state(STATE) or {})["observations"] == 2  # looked at: 1 and 2


def started(mark: Path, result: AsyncResult, timeout: float = 60.0) -> None:
    """Waits until the slow job's body runs (it leaves `<mark>.started`), not just until a
    worker took it, so what follows happens in the middle of the job."""
    deadline = time.monotonic() + timeout
    while not mark.with_suffix(".started").exists():
        assert not result.ready(), result.result
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    mark.with_suffix(".started").unlink()  # the next run of the job leaves a new one


def test_job_of_a_killed_worker_is_completed_by_a_restarted_worker(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    settings = _settings(tiny_store)
    app = build_app(settings)
    first = Worker(tiny_store, tmp_path / "first.log")
    workers.append(first)
    first.wait_ready(app)
    mark = tmp_path / "job"
    result = app.send_task(SLOW_TASK, args=[str(mark), JOB_S])
    started(mark, result)
    first.kill()
    assert not mark.exists() and not result.ready()  # killed in the middle of the job
    # The job was not acknowledged, so after the visibility timeout a new worker gets it.
    second = Worker(tiny_store, tmp_path / "second.log")
    workers.append(second)
    second.wait_ready(app)
    assert result.get(timeout=240) == str(mark)
    result.forget()
    assert mark.read_text() == "done"
    assert SLOW_TASK in (tmp_path / "second.log").read_text()  # the new worker ran it


def test_job_of_a_killed_pool_child_is_redelivered_at_once(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    settings = _settings(tiny_store)
    app = build_app(settings)
    worker = Worker(tiny_store, tmp_path / "worker.log")
    workers.append(worker)
    worker.wait_ready(app)
    mark = tmp_path / "job"
    result = app.send_task(SLOW_TASK, args=[str(mark), JOB_S])
    started(mark, result)
    active = app.control.inspect(destination=[worker.name], timeout=5).active() or {}
    [child] = [job["worker_pid"] for jobs in active.values() for job in jobs
               if job["id"] == result.id]
    os.kill(child, signal.SIGKILL)
    assert not mark.exists() and not result.ready()  # killed in the middle of the job
    # The main process sees its child die, rejects the job back to the queue
    # (task_reject_on_worker_lost), forks a new child, and that child runs it again.
    assert result.get(timeout=240) == str(mark)
    result.forget()
    assert mark.read_text() == "done"
    assert worker.process.poll() is None
    assert "SIGKILL" in worker.log.read_text()  # the child really died mid-job


def test_a_job_expired_in_the_queue_means_unavailable(
    tiny_store: TinyStore, clean_redis: redis.Redis, workers: list[Worker], tmp_path: Path
) -> None:
    """Under load a job can wait past its expiry; the worker that takes it drops it and
    stores REVOKED. The client says the recommender is unavailable (the customer gets the
    degraded answer), never takes the stored exception for suggestions."""
    from workers.app import SCORE_TASK

    settings = _settings(tiny_store)
    app = build_app(settings)
    request = RecommendationRequest(user_id="C0003", text="rain jacket")
    result = app.send_task(SCORE_TASK, args=[request.model_dump(mode="json")], queue=QUEUE,
                           expires=0.2)
    time.sleep(0.5)  # expired before any worker is there to take it
    workers.append(Worker(tiny_store, tmp_path / "worker.log"))
    workers[0].wait_ready(app)
    deadline = time.monotonic() + 60
    while result.state != "REVOKED":
        assert time.monotonic() < deadline, result.state
        time.sleep(0.05)
    client = CeleryRecommender(settings, app)
    with pytest.raises(RecommenderUnavailable, match="expired in the queue"):
        client.check_answered(result, result.get(propagate=False), time.perf_counter())
    result.forget()
    assert client.recommend(request)  # the worker itself is fine


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


def test_importing_the_client_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys, workers.client, workers.app\n"
        "heavy = [m for m in ('torch', 'transformers', 'workers.tasks') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, env=clean_env())
