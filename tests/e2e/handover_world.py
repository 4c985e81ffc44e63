"""Two real bot processes for the hand-over tests and benchmark, and the platform side.

`running(backend, dir)` starts the telegram-test-api emulator, the stand-in Slack Web API, and
`python -m tests.e2e.handover_bot telegram` and `... slack` on one store (the SQLite file of the
embedded default, or Redis DB 14 as when scaled); the Slack process hosts the support channel.
The functions below send what Slack would send (signed events, button presses) and read what
the peers received.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis

from core.handover.tickets.redis import RedisTicketStore
from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import Ticket, TicketStore
from tests.bots.peers import (
    SlackWebApi,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    signed_headers,
    wait_until,
)
from tests.processes import clean_env

TOKEN = "7000:handover-token"
SECRET = "handover-signing-secret"
SUPPORT = "C0SUPPORT"
DANA, EVE = "U0DANA", "U0EVE"  # an agent, and someone in the channel who is not one
REDIS_URL = "redis://127.0.0.1:6379/14"
SLOW = 60.0  # bot processes start and answer on a busy machine


class Bot:
    """One bot process (`python -m tests.e2e.handover_bot KIND`), logs in the test's tmp dir."""

    def __init__(self, kind: str, env: dict[str, str], logs: Path) -> None:
        self.kind, self.env, self.logs = kind, env, logs
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Bot:
        self.starts += 1
        log = open(self.logs / f"{self.kind}-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.handover_bot", self.kind],
            cwd=self.logs,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.log"))


@contextmanager
def running(backend: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Both bot processes on the embedded SQLite file, or on Redis (DB 14) as when scaled."""
    prefix = f"test-handover-{uuid.uuid4().hex[:8]}"
    emulator = TelegramEmulator(TOKEN).start()
    api = SlackWebApi().start()
    port = free_port()
    env = clean_env(
        state_backend=backend,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        sqlite_path=tmp_path / "concierge.sqlite3",
        delivery_wait_s="0.3",
        escalation_sla_s="3600",
        telegram_token=TOKEN,
        telegram_base_url=emulator.url,
        telegram_poll_interval_s="0.05",
        slack_bot_token="xoxb-handover",
        slack_signing_secret=SECRET,
        slack_api_url=api.base_url,
        slack_port=str(port),
        support_channel=SUPPORT,
        support_agents=json.dumps([DANA]),
    )
    tickets: TicketStore = (
        SqliteTicketStore(tmp_path / "concierge.sqlite3")
        if backend == "sqlite"
        else RedisTicketStore(REDIS_URL, prefix)
    )
    telegram = Bot("telegram", env, tmp_path).start()
    slack = Bot("slack", env, tmp_path).start()
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        wait_until(lambda: _answers(url), SLOW, 0.2)
        yield {
            "emulator": emulator,
            "api": api,
            "url": url,
            "telegram": telegram,
            "slack": slack,
            "tickets": tickets,
        }
    finally:
        telegram.stop()
        slack.stop()
        emulator.stop()
        api.stop()
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def _answers(url: str) -> bool:
    try:
        status, _ = post_bytes(url, b"{}", {"Content-Type": "application/json"})
    except OSError:
        return False
    return status == 401  # up, and refusing an unsigned request


# -- the Slack side, as Slack would send it ------------------------------------------------------


def deliver(url: str, event: dict[str, Any]) -> None:
    data = json.dumps(event_body(event, f"Ev{uuid.uuid4().hex[:10]}")).encode()
    status, _ = post_bytes(url, data, signed_headers(SECRET, data))
    assert status == 200


def press(
    url: str, user: str, channel: str, message: dict[str, Any], button: dict[str, Any]
) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": user, "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "token": "unused",
        "trigger_id": "t1",
        "channel": {"id": channel, "name": "c"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
        "message": {"type": "message", "bot_id": "BBOT", **message},
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": "b1",
                "value": button["value"],
                "action_ts": timestamp(),
                "text": button["text"],
            }
        ],
    }
    data = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed_headers(SECRET, data, content_type="application/x-www-form-urlencoded")
    assert post_bytes(url, data, headers)[0] == 200


def message(channel: str, user: str, text: str, thread_ts: str | None, kind: str) -> dict[str, Any]:
    ts = timestamp()
    event = {
        "type": "message",
        "channel": channel,
        "channel_type": kind,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def timestamp() -> str:
    return f"{time.time():.6f}"


def desk_button(ticket: Ticket, action: str) -> dict[str, Any]:
    return {
        "action_id": f"concierge.desk.{action}",
        "value": ticket.id,
        "text": {"type": "plain_text", "text": action},
    }


def posted_texts(api: SlackWebApi, channel: str) -> list[str]:
    return [str(body.get("text", "")) for body in api.posted(channel)]


def ephemerals(api: SlackWebApi, user: str) -> list[str]:
    return [
        str(call["body"].get("text", ""))
        for call in list(api.calls)
        if call["method"] == "chat.postEphemeral" and call["body"].get("user") == user
    ]


def ticket_in_channel(world: dict[str, Any]) -> Ticket:
    """The ticket the support channel shows (waits for the post and its thread link)."""
    api: SlackWebApi = world["api"]
    text = wait_until(
        lambda: next((t for t in posted_texts(api, SUPPORT) if t.startswith("New ticket")), ""),
        SLOW,
    )
    found = re.search(r"New ticket (T-\d{8}-[0-9a-f]+)", text)
    assert found is not None
    tickets: TicketStore = world["tickets"]
    ticket = wait_until(lambda: _linked(tickets, found.group(1)), SLOW)
    assert ticket is not None
    return ticket


def _linked(tickets: TicketStore, ticket_id: str) -> Ticket | None:
    ticket = tickets.get(ticket_id)
    return ticket if ticket is not None and ticket.agent_thread else None


def thread_ts(ticket: Ticket) -> str:
    assert ticket.agent_thread is not None
    return ticket.agent_thread.rsplit(":", 1)[1]


def in_thread(api: SlackWebApi, ticket: Ticket, words: str) -> bool:
    root = thread_ts(ticket)
    return any(
        words in str(body.get("text", "")) and body.get("thread_ts") == root
        for body in api.posted(SUPPORT)
    )


# -- Telegram customer -----------------------------------------------------------------------------


def telegram_texts(emulator: TelegramEmulator, chat: int) -> list[str]:
    return [str(m["message"].get("text", "")) for m in emulator.bot_messages(chat)]


def telegram_says(emulator: TelegramEmulator, chat: int, words: str) -> dict[str, Any]:
    return wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(chat) if words in m["message"].get("text", "")), {}
        ),
        SLOW,
    )
