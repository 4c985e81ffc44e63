"""`concierge doctor` against good and broken configurations, as a user would run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bots.doctor import signing_secret_problem, slack_token_problem, telegram_token_problem

REPO = Path(__file__).resolve().parents[2]
GOOD_TELEGRAM = "123456789:" + "A" * 20 + "b_-" + "9" * 12
GOOD_SECRET = "0123456789abcdef" * 2


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def doctor(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    """Runs the doctor in an empty folder (no .env) with only these CONCIERGE_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    clean |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
              "CONCIERGE_SQLITE_PATH": str(tmp_path / "state.sqlite3")}
    clean |= {f"CONCIERGE_{k.upper()}": v for k, v in env.items()}
    done = subprocess.run([sys.executable, "-m", "bots.doctor", *args], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("token", "problem"), [
    (GOOD_TELEGRAM, None),
    ("123456789" + "A" * 35, "has no ':'"),
    ("bot123:" + "A" * 35, "numeric id"),
    ("123456789:" + "A" * 34, "34 characters after"),
    (f'"{GOOD_TELEGRAM}"', "quotes"),
    (f"{GOOD_TELEGRAM}\n", "line break"),
])
def test_telegram_token_shapes(token: str, problem: str | None) -> None:
    found = telegram_token_problem(token)
    assert found is None if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("token", "prefix", "problem"), [
    ("xoxb-1234-5678-abcDEF", "xoxb-", None),
    ("xapp-1-A123-456-abc", "xapp-", None),
    ("xoxp-1234-5678-abc", "xoxb-", "user token"),
    ("xoxb-1234-5678-abc", "xapp-", "bot token"),
    ("1234-5678", "xoxb-", "does not start with xoxb-"),
    ("xoxb-12 34", "xoxb-", "characters"),
])
def test_slack_token_shapes(token: str, prefix: str, problem: str | None) -> None:
    found = slack_token_problem(token, prefix)
    assert found is None if problem is None else (found is not None and problem in found)


def test_signing_secret_shapes() -> None:
    assert signing_secret_problem(GOOD_SECRET) is None
    assert "expected 32" in str(signing_secret_problem(GOOD_SECRET[:30]))
    assert "not hexadecimal" in str(signing_secret_problem("z" * 32))


def test_good_embedded_configuration_passes(tmp_path: Path) -> None:
    code, out = doctor(tmp_path)
    assert code == 0, out
    assert "all " in out and "checks passed" in out
    assert "ok    data" in out


def test_redis_down_is_named_with_the_fix(tmp_path: Path) -> None:
    port = closed_port()
    code, out = doctor(tmp_path, state_backend="redis",
                       redis_url=f"redis://:hunter2@127.0.0.1:{port}/15")
    assert code == 1
    assert f"Redis at redis://:***@127.0.0.1:{port}/15 is not reachable" in out
    assert "CONCIERGE_REDIS_URL" in out and "hunter2" not in out


def test_redis_up_passes(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, "--json", state_backend="redis",
                       redis_url="redis://127.0.0.1:6379/15")
    assert code == 0, out
    state = next(json.loads(line) for line in out.splitlines() if '"state"' in line)
    assert state["status"] == "ok" and "answered PING" in state["detail"]


def test_missing_data_and_bad_setting_are_reported(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, demo_dir=str(tmp_path / "nowhere"))
    assert code == 1 and "store data directory not found" in out
    code, out = doctor(tmp_path, state_backend="mongodb")
    assert code == 2 and "CONCIERGE_STATE_BACKEND" in out
