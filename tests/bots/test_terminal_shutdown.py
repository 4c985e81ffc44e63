"""SIGTERM to the terminal chat: the turn in flight finishes and is saved, nothing new starts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def start(tmp_path: Path, seconds: float, grace_s: float) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CONCIERGE_SQLITE_PATH": str(tmp_path / "state.sqlite3"),
        "CONCIERGE_SHUTDOWN_GRACE_S": str(grace_s),
        "CONCIERGE_LOG_LEVEL": "INFO",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bots.slow_chat", str(seconds), "C0001"],
        cwd=REPO, env=env, text=True, bufsize=1,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for_line(stream: object, marker: str, timeout_s: float = 60) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never came; got {seen}")


def saved(tmp_path: Path) -> tuple[list[dict], int]:
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        states = [json.loads(row[0]) for row in db.execute("SELECT state FROM conversations")]
        locks = db.execute("SELECT count(*) FROM locks").fetchone()[0]
    finally:
        db.close()
    return states, locks


def test_sigterm_during_a_turn_lets_it_finish_and_save(tmp_path: Path) -> None:
    chat = start(tmp_path, seconds=1.5, grace_s=20)
    assert chat.stdin and chat.stdout and chat.stderr
    chat.stdin.write("what is your return policy?\n")
    chat.stdin.flush()
    wait_for_line(chat.stderr, "understanding: what is your return policy?")
    chat.send_signal(signal.SIGTERM)
    # Sent after SIGTERM: must not be taken.
    chat.stdin.write("how long does shipping take?\n")
    chat.stdin.flush()
    out, err = chat.communicate(timeout=30)
    assert chat.returncode == 0, err
    assert out.startswith("concierge> "), out
    assert out.count("concierge> ") == 1
    assert "understanding: how long" not in err
    assert "shutdown.requested" in err and "in_turn=True" in err
    states, locks = saved(tmp_path)
    assert locks == 0
    assert len(states) == 1 and states[0]["turns"] == 1
    said = [(turn["role"], turn["text"]) for turn in states[0]["transcript"]]
    assert said[0] == ("customer", "what is your return policy?")
    assert said[1][0] == "assistant" and said[1][1] in out


def test_sigterm_while_waiting_for_input_exits_at_once(tmp_path: Path) -> None:
    chat = start(tmp_path, seconds=0.0, grace_s=20)
    assert chat.stdin and chat.stdout
    chat.stdin.write("what is your return policy?\n")
    chat.stdin.flush()
    wait_for_line(chat.stdout, "concierge> ")
    started = time.monotonic()
    chat.send_signal(signal.SIGTERM)
    _, err = chat.communicate(timeout=30)
    assert chat.returncode == 0, err
    assert time.monotonic() - started < 5
    states, locks = saved(tmp_path)
    assert (len(states), states[0]["turns"], locks) == (1, 1, 0)


@pytest.mark.timeout(60)
def test_a_turn_past_the_grace_period_is_abandoned_without_saving(tmp_path: Path) -> None:
    chat = start(tmp_path, seconds=30, grace_s=0.5)
    assert chat.stdin and chat.stderr
    chat.stdin.write("what is your return policy?\n")
    chat.stdin.flush()
    wait_for_line(chat.stderr, "understanding:")
    chat.send_signal(signal.SIGTERM)
    out, err = chat.communicate(timeout=20)
    assert chat.returncode == 1
    assert "shutdown.turn_abandoned" in err and "was not answered" in err
    assert out == ""
    states, locks = saved(tmp_path)
    assert (states, locks) == ([], 0)
