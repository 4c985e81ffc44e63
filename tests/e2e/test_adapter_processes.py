"""`python -m bots.telegram` and `python -m bots.slack` as real processes, wired by main().

They build the core with `bots.wiring.build_conversation` from environment settings, exactly
as in production (the default local understanding model and in-process recommender), and
talk to the local platform peers. A customer says "hi" and must get the greeting back.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.turn import replies
from tests.bots.peers import (
    LoopThread,
    SlackWebApi,
    SocketModeServer,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    signed_headers,
    wait_for,
)
from tests.processes import clean_env

SECRET = "process-signing-secret"


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    return clean_env(
        state_backend="sqlite", sqlite_path=tmp_path / "concierge.sqlite3", log_level="INFO"
    )


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    return tmp_path


def spawn(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=log.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return log.read_text(errors="replace")


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_telegram_process_answers_a_customer(environment, logs_dir, mode):
    token = "8000:process-token"
    emulator = TelegramEmulator(token).start()
    env = environment | {
        "CONCIERGE_TELEGRAM_TOKEN": token,
        "CONCIERGE_TELEGRAM_BASE_URL": emulator.url,
        "CONCIERGE_TELEGRAM_POLL_INTERVAL_S": "0.05",
    }
    if mode == "webhook":
        port = free_port()
        env |= {
            "CONCIERGE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "CONCIERGE_TELEGRAM_PORT": str(port),
            "CONCIERGE_TELEGRAM_WEBHOOK_SECRET": "process-webhook-secret",
        }
    log = logs_dir / "telegram.log"
    process = spawn("bots.telegram", env, log)
    try:
        if mode == "webhook":
            wait_for(lambda: emulator.calls("setWebhook"), 1, timeout=60)
            listening(port, process, log)
        emulator.send("hi", chat_id=8001, user_id=8001)
        [reply] = wait_for(lambda: emulator.bot_messages(8001), 1, timeout=60)
        # The core understood the greeting and answered it: not an error reply, not an echo.
        assert reply["message"]["text"] == replies.GREETING
        assert reply["message"]["reply_parameters"]["message_id"]
    finally:
        output = stop(process, log)
        emulator.stop()
    assert f"telegram.{mode}" in output


def listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.2)


def test_slack_process_answers_a_customer(environment, logs_dir):
    api = SlackWebApi().start()
    port = free_port()
    env = environment | {
        "CONCIERGE_SLACK_MODE": "http",
        "CONCIERGE_SLACK_BOT_TOKEN": "xoxb-process",
        "CONCIERGE_SLACK_SIGNING_SECRET": SECRET,
        "CONCIERGE_SLACK_API_URL": api.base_url,
        "CONCIERGE_SLACK_PORT": str(port),
    }
    log = logs_dir / "slack.log"
    process = spawn("bots.slack", env, log)
    try:
        listening(port, process, log)
        ts = "1700008000.000100"
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": "D8",
            "user": "U8",
            "text": "hi",
            "ts": ts,
            "event_ts": ts,
        }
        data = json.dumps(event_body(event, "EvProc1")).encode()
        status, _ = post_bytes(
            f"http://127.0.0.1:{port}/slack/events", data, signed_headers(SECRET, data)
        )
        assert status == 200
        [post] = wait_for(lambda: api.posted("D8"), 1, timeout=60)
        assert post["thread_ts"] == ts and post["text"] == replies.GREETING
    finally:
        output = stop(process, log)
        api.stop()
    assert "slack.http" in output


def test_slack_socket_mode_process_answers_a_customer(environment, logs_dir):
    api = SlackWebApi().start()
    loop = LoopThread()
    server = SocketModeServer(loop).start()
    api.socket_url = server.url
    env = environment | {
        "CONCIERGE_SLACK_MODE": "socket",
        "CONCIERGE_SLACK_BOT_TOKEN": "xoxb-process",
        "CONCIERGE_SLACK_APP_TOKEN": "xapp-process",
        "CONCIERGE_SLACK_API_URL": api.base_url,
    }
    log = logs_dir / "slack-socket.log"
    process = spawn("bots.slack", env, log)
    try:
        assert server.connected.wait(60), log.read_text(errors="replace")
        ts = "1700008100.000100"
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": "D9",
            "user": "U9",
            "text": "hi",
            "ts": ts,
            "event_ts": ts,
        }
        server.push(
            {
                "envelope_id": "env-p1",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": event_body(event, "EvP2"),
            }
        )
        [post] = wait_for(lambda: api.posted("D9"), 1, timeout=60)
        assert post["thread_ts"] == ts and post["text"] == replies.GREETING
        assert any(ack.get("envelope_id") == "env-p1" for ack in server.acks)
    finally:
        output = stop(process, log)
        server.stop()
        loop.close()
        api.stop()
    assert "slack.socket_mode" in output
