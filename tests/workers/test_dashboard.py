"""`concierge flower`: Flower on the project's broker answers on 127.0.0.1 and sees workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.processes import clean_env

BROKER = "redis://127.0.0.1:6379/15"


@pytest.mark.timeout(120)
def test_flower_serves_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = clean_env(celery_broker_url=BROKER, celery_result_backend=BROKER)
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
    finally:
        flower.send_signal(signal.SIGTERM)
        try:
            out, _ = flower.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            # Flower holds no state; its SIGTERM handler can wedge on a thread lock.
            os.killpg(flower.pid, signal.SIGKILL)
            out, _ = flower.communicate()
        redis.Redis.from_url(BROKER).flushdb()
    assert f"127.0.0.1:{port}" in out
