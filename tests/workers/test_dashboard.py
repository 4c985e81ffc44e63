"""`concierge flower`: Flower on the project's broker answers on 127.0.0.1, asks for the
settings' login (its health check stays open for the container's probe)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import redis

from tests.processes import clean_env

BROKER = "redis://127.0.0.1:6379/15"
PASSWORD = "flower-test-pw"


@pytest.mark.timeout(120)
def test_flower_serves_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = clean_env(celery_broker_url=BROKER, celery_result_backend=BROKER, flower_user="ops",
                    flower_password=PASSWORD)
    flower = subprocess.Popen([sys.executable, "-m", "bots.cli", "flower", f"--port={port}"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        answer = ""
        while time.monotonic() < deadline and not answer:
            try:
                url = f"http://127.0.0.1:{port}/healthcheck"
                with urllib.request.urlopen(url, timeout=2) as response:
                    answer = response.read().decode()
            except OSError:
                time.sleep(0.3)
        assert answer == "OK"
        workers = f"http://127.0.0.1:{port}/api/workers"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(workers, timeout=10)
        assert refused.value.code == 401
        login = b64encode(f"ops:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(workers, headers={"Authorization": f"Basic {login}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        flower.send_signal(signal.SIGTERM)
        try:
            out, _ = flower.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            # Flower holds no state; its SIGTERM handler can wedge on a thread lock.
            os.killpg(flower.pid, signal.SIGKILL)
            out, _ = flower.communicate()
        redis.Redis.from_url(BROKER).flushdb()
    assert f"127.0.0.1:{port}" in out and PASSWORD not in out
