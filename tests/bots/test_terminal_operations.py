"""The terminal chat as an operated process: SIGTERM lets the turn in flight finish and be saved
and starts nothing new; /metrics counts its turns; `concierge health` asks it how it is."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bots.doctor import health_main
from tests.processes import clean_env


def start(tmp_path: Path, seconds: float, grace_s: float, **extra: str) -> subprocess.Popen[str]:
    env = clean_env(sqlite_path=tmp_path / "state.sqlite3", shutdown_grace_s=str(grace_s),
                    log_level="INFO", **extra)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bots.slow_chat", str(seconds), "C0001"],
        cwd=tmp_path, env=env, text=True, bufsize=1,
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape_until(port: int, needle: str, timeout_s: float = 10) -> str:
    """/metrics once it shows `needle`: a reply goes out just before its turn is counted."""
    deadline, scraped = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline and needle not in scraped:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            scraped = answer.read().decode()
    return scraped


def test_metrics_count_the_turns_and_health_answers(tmp_path: Path) -> None:
    port = free_port()
    chat = start(tmp_path, seconds=0.0, grace_s=20, metrics_port=str(port))
    assert chat.stdin and chat.stdout
    try:
        for question in ("what is your return policy?", "can I return shoes?", "refund?"):
            chat.stdin.write(question + "\n")
            chat.stdin.flush()
            wait_for_line(chat.stdout, "concierge> ")
        scraped = scrape_until(port, 'concierge_turn_seconds_count{platform="terminal"} 3.0')
        assert ('concierge_turns_total{decision="policy_answer",intent="return_refund",'
                'platform="terminal"} 3.0') in scraped
        assert 'concierge_turn_seconds_count{platform="terminal"} 3.0' in scraped
        assert health_main(["--url", f"http://127.0.0.1:{port}/healthz"]) == 0
    finally:
        chat.send_signal(signal.SIGTERM)
        chat.communicate(timeout=30)
    assert chat.returncode == 0
    assert health_main(["--url", f"http://127.0.0.1:{port}/healthz"]) == 1


@pytest.mark.slow
def test_concierge_chat_serves_metrics_of_its_turns(tmp_path: Path) -> None:
    """The real `concierge chat` (local models, demo store) with metrics on."""
    port = free_port()
    env = clean_env(sqlite_path=tmp_path / "state.sqlite3", metrics_port=str(port))
    chat = subprocess.Popen([sys.executable, "-m", "bots.cli", "chat", "--user", "C0009"],
                            cwd=tmp_path, env=env, text=True, bufsize=1, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert chat.stdin and chat.stdout
    try:
        for line in ("hi", "what is your return policy?", "I need a waterproof jacket"):
            chat.stdin.write(line + "\n")
            chat.stdin.flush()
            wait_for_line(chat.stdout, "concierge> ", timeout_s=180)
        scraped = scrape_until(port, 'concierge_turn_seconds_count{platform="terminal"} 3.0')
    finally:
        chat.send_signal(signal.SIGTERM)
        _, err = chat.communicate(timeout=60)
    assert chat.returncode == 0, err
    turns = [line for line in scraped.splitlines()
             if line.startswith("concierge_turns_total{") and 'platform="terminal"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in turns) == 3.0, turns
    assert any('intent="return_refund"' in line for line in turns), turns
    assert 'concierge_turn_seconds_count{platform="terminal"} 3.0' in scraped
    assert 'concierge_recommender_job_seconds_count{backend="inprocess",outcome="ok"} 1.0' \
        in scraped
