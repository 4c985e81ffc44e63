"""No customer message lost to a stopped or killed bot process: real `python -m` processes of
the Telegram and Slack adapters (tests/e2e/slow_bot.py: every turn takes a few seconds) against
the Telegram emulator and the Slack Web API stand-in.

- SIGTERM during a turn: the turn finishes, its reply goes out, the process exits 0.
- SIGKILL during a turn: the message is in the inbox; the next process answers it, once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.turn import replies
from tests.bots.peers import (
    SlackWebApi,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    settled,
    signed_headers,
    wait_for,
    wait_until,
)
from tests.e2e.test_adapter_processes import listening
from tests.processes import clean_env

TOKEN = "8100:crash-token"
SECRET = "crash-signing-secret"
TURN_S = 3.0


@pytest.fixture
def emulator():
    peer = TelegramEmulator(TOKEN).start()
    yield peer
    peer.stop()


def telegram_env(tmp_path: Path, emulator: TelegramEmulator) -> dict[str, str]:
    return clean_env(
        state_backend="sqlite", sqlite_path=tmp_path / "concierge.sqlite3", log_level="INFO",
        telegram_token=TOKEN, telegram_base_url=emulator.url, telegram_poll_interval_s="0.05",
        inbox_lease_s="2", shutdown_grace_s="20",
    )


def spawn(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.slow_bot", kind, str(TURN_S)],
            cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def in_turn(log: Path, text: str, count: int = 1) -> None:
    wait_until(lambda: log.read_text(errors="replace").count(f"understanding: {text}") >= count,
               timeout=60)


def finish(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_telegram_sigterm_lets_the_turn_in_flight_reply_then_exits_0(tmp_path, emulator):
    log = tmp_path / "telegram.log"
    process = spawn("telegram", telegram_env(tmp_path, emulator), log)
    try:
        emulator.send("hello there", chat_id=8101, user_id=8101)
        in_turn(log, "hello there")
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 0, log.read_text(errors="replace")
    finally:
        finish(process)
    texts = [m["message"]["text"] for m in emulator.bot_messages(8101)]
    assert texts == [replies.GREETING], log.read_text(errors="replace")


def test_telegram_sigkill_mid_turn_is_answered_once_by_the_next_process(tmp_path, emulator):
    env = telegram_env(tmp_path, emulator)
    log = tmp_path / "telegram.log"
    first = spawn("telegram", env, log)
    try:
        emulator.send("hello there", chat_id=8102, user_id=8102)
        in_turn(log, "hello there")
        first.kill()
        first.wait(10)
        assert emulator.bot_messages(8102) == []
        second = spawn("telegram", env, log)
        try:
            # The killed turn still holds the conversation lock until its lease (15 s) ends.
            wait_for(lambda: emulator.bot_messages(8102), 1, timeout=150)
            answered = settled(lambda: emulator.bot_messages(8102), quiet=TURN_S + 3, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(40)
            finish(second)
    finally:
        finish(first)
    assert [m["message"]["text"] for m in answered] == [replies.GREETING]
    assert "inbox.replay" in log.read_text(errors="replace")


def slack_env(tmp_path: Path, api: SlackWebApi, port: int) -> dict[str, str]:
    return clean_env(
        state_backend="sqlite", sqlite_path=tmp_path / "concierge.sqlite3", log_level="INFO",
        slack_mode="http", slack_bot_token="xoxb-crash", slack_signing_secret=SECRET,
        slack_api_url=api.base_url, slack_port=str(port), inbox_lease_s="2",
        shutdown_grace_s="20",
    )


def say_hi(port: int, channel: str, ts: str, event_id: str) -> None:
    event = {"type": "message", "channel_type": "im", "channel": channel, "user": "U81",
             "text": "hello there", "ts": ts, "event_ts": ts}
    data = json.dumps(event_body(event, event_id)).encode()
    status, _ = post_bytes(
        f"http://127.0.0.1:{port}/slack/events", data, signed_headers(SECRET, data)
    )
    assert status == 200


def test_slack_sigterm_lets_the_turn_in_flight_reply_then_exits_0(tmp_path):
    api = SlackWebApi().start()
    port = free_port()
    log = tmp_path / "slack.log"
    process = spawn("slack", slack_env(tmp_path, api, port), log)
    try:
        listening(port, process, log)
        say_hi(port, "D81", "1700008100.000100", "EvCrash1")
        in_turn(log, "hello there")
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 0, log.read_text(errors="replace")
        posted = api.posted("D81")
    finally:
        finish(process)
        api.stop()
    assert [p["text"] for p in posted] == [replies.GREETING], log.read_text(errors="replace")


def test_slack_sigkill_mid_turn_is_answered_once_by_the_next_process(tmp_path):
    api = SlackWebApi().start()
    port = free_port()
    env = slack_env(tmp_path, api, port)
    log = tmp_path / "slack.log"
    first = spawn("slack", env, log)
    try:
        listening(port, first, log)
        say_hi(port, "D82", "1700008200.000100", "EvCrash2")
        in_turn(log, "hello there")
        first.kill()
        first.wait(10)
        second = spawn("slack", env, log)
        try:
            wait_for(lambda: api.posted("D82"), 1, timeout=150)
            posted = settled(lambda: api.posted("D82"), quiet=TURN_S + 3, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(40)
            finish(second)
    finally:
        finish(first)
        api.stop()
    assert [p["text"] for p in posted] == [replies.GREETING]
