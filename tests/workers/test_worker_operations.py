"""`concierge worker` as an operated process, against the Redis on 127.0.0.1 (DB 15): SIGTERM
mid-job finishes the job and leaves the queued one for the next worker; /healthz and /metrics
answer; `concierge doctor` sees the worker and the model version it serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.infra.health import model_version
from core.infra.settings import Settings
from tests.processes import clean_env
from tests.workers.slow_job import SLOW_TASK
from workers.app import build_app

QUEUE = f"concierge.score.ops-test-{uuid.uuid4().hex[:8]}"  # this run's own queue

BROKER = "redis://127.0.0.1:6379/15"
SETTINGS = Settings(celery_broker_url=BROKER, celery_result_backend=BROKER, celery_queue=QUEUE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        celery_broker_url=BROKER,
        celery_result_backend=BROKER,
        celery_queue=QUEUE,
        recommender="celery",
        recommender_dir=tmp_path / "model",
        sqlite_path=tmp_path / "state.sqlite3",
        log_level="INFO",
        **extra,
    )


def start_worker(tmp_path: Path, name: str, **extra: str) -> subprocess.Popen[str]:
    """`concierge worker` in its own process group, answering pings once this returns."""
    hostname = f"{name}-{uuid.uuid4().hex[:6]}@ops-test"
    worker = subprocess.Popen(
        [sys.executable, "-m", "bots.cli", "worker", "--include=tests.workers.slow_job",
         "--pool=prefork", "--concurrency=1", f"--hostname={hostname}"],
        cwd=tmp_path, env=environment(tmp_path, **extra), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    app = build_app(SETTINGS)
    try:
        wait_for(lambda: worker.poll() is not None
                 or app.control.ping(destination=[hostname], timeout=0.5), 90)
    finally:
        app.close()
    assert worker.poll() is None, "the worker exited while starting"
    return worker


def stop(worker: subprocess.Popen[str]) -> str:
    """SIGTERM, as `docker stop` sends it; the whole group is killed if it does not exit."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        out, _ = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        out, _ = worker.communicate()
    return out


def wait_for(condition: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pt").write_bytes(b"weights v1")
    yield client
    client.flushdb()


@pytest.mark.timeout(180)
def test_sigterm_mid_job_finishes_it_and_keeps_the_queued_one(
    tmp_path: Path, broker: redis.Redis
) -> None:
    app = build_app(SETTINGS)
    worker = start_worker(tmp_path, "first")
    try:
        running = app.send_task(SLOW_TASK, args=[str(tmp_path / "one"), 3.0])
        waiting = app.send_task(SLOW_TASK, args=[str(tmp_path / "two"), 0.1])
        wait_for(lambda: (tmp_path / "one.started").exists())
    finally:
        out = stop(worker)
    assert worker.returncode == 0, out
    assert running.get(timeout=10) == str(tmp_path / "one")
    assert (tmp_path / "one").read_text() == "done"
    assert not (tmp_path / "two.started").exists()
    assert broker.llen(QUEUE) == 1  # not lost: back in the queue for the next worker
    second = start_worker(tmp_path, "second")
    try:
        assert waiting.get(timeout=60) == str(tmp_path / "two")
    finally:
        stop(second)


@pytest.mark.timeout(180)
def test_worker_health_metrics_and_doctor(tmp_path: Path, broker: redis.Redis) -> None:
    port = free_port()
    worker = start_worker(tmp_path, "probe", metrics_port=str(port))
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 90)
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            scraped = response.read().decode()
        assert f'concierge_recommender_queue_depth{{queue="{QUEUE}"}} 0.0' in scraped
        done = subprocess.run(
            [sys.executable, "-m", "bots.doctor", "--json"], cwd=tmp_path,
            env=environment(tmp_path), capture_output=True, text=True, timeout=60,
        )
        findings = {f["check"]: f for f in map(json.loads, done.stdout.splitlines())}
        assert findings["workers"]["status"] == "ok", done.stdout
        assert "probe-" in findings["workers"]["detail"]
        assert f"model {model_version(tmp_path / 'model')}" in findings["workers"]["detail"]
    finally:
        out = stop(worker)
    assert worker.returncode == 0, out
