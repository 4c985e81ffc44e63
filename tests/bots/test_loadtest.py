"""`concierge bench load`: a short real run, and the checks it makes, shown able to fail.

The run starts the whole world (its own Redis, a Celery worker, a Telegram bot on the emulator,
a Slack process, terminal customers) for 15 s with one fault, and reports one JSON line. The
checks are pure functions over what the stand-ins recorded: fed a duplicated reply, a lost
message, a lost or repeated agent reply, or a log holding a secret, they must say so.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bots.loadtest.checks import (
    AgentReply,
    Sent,
    judge_agent_replies,
    judge_messages,
    latency_figures,
    saved_a_turn,
    secrets_in_logs,
    silent_refusals,
)
from bots.loadtest.customers import TelegramChannel, TelegramInbox
from bots.loadtest.faults import chosen_faults, schedule
from bots.loadtest.peers import TelegramEmulator
from core.turn import replies
from tests.processes import clean_env


def answered(key: str, *texts: str, at: float = 100.0, sent_at: float = 99.9) -> Sent:
    message = Sent("telegram", "c1", key, "hi", sent_at)
    message.replies = [(text, at) for text in texts]
    return message


def test_a_short_run_reports_every_figure(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bots.cli", "bench", "load", "--customers", "10",
               "--seconds", "15", "--faults", "llm_garbage"]
    done = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("turns", "turns_per_s", "p50_ms", "p99_ms", "p99_ms_outside_faults", "lost",
                 "duplicated", "rate_limited", "busy", "secrets_in_logs", "state"):
        assert name in result, name
    assert set(result["agent_replies"]) == {"sent", "received", "lost", "duplicated"}
    assert set(result["platforms"]) == {"telegram", "slack", "terminal"}
    assert all(counts["messages"] > 0 for counts in result["platforms"].values())
    assert result["turns"] > 0 and result["turns_per_s"] > 0
    garbage = result["faults"]["llm_garbage"]
    assert garbage["start"] < garbage["end"]
    # Secrets were looked for (by name); whether any leaked is what the run reports.
    assert isinstance(result["secrets_in_logs"], dict)
    assert "Telegram bot(s)" in done.stderr  # the readable summary


@pytest.fixture
def emulator() -> Iterator[TelegramEmulator]:
    started = TelegramEmulator("4242:load-inbox-test-token").start()
    yield started
    started.stop()


def test_a_telegram_customer_waits_for_the_answer_to_its_own_message(
    emulator: TelegramEmulator,
) -> None:
    """One long poll per bot brings each chat its messages: a customer's `say` returns when the
    bot answers its message, not when the bot writes to another chat or posts without
    answering."""
    token = emulator.token

    async def bot_sends(session: aiohttp.ClientSession, chat: int, reply_to: int | None) -> None:
        body: dict[str, object] = {"chat_id": chat, "text": f"to {chat}"}
        if reply_to is not None:
            body["reply_parameters"] = json.dumps({"message_id": reply_to})
        async with session.post(f"{emulator.url}/bot{token}/sendMessage", json=body) as answer:
            answer.raise_for_status()

    async def scenario() -> tuple[float, list[str], list[str]]:
        async with (
            aiohttp.ClientSession() as session,
            TelegramInbox(session, emulator.url).watching([token]) as inbox,
        ):
            customer = TelegramChannel(session, emulator.url, token, 7001, inbox)
            other = TelegramChannel(session, emulator.url, token, 7002, inbox)

            async def bot() -> None:
                await asyncio.sleep(0.3)
                await bot_sends(session, 7002, 1)  # another chat's answer
                await bot_sends(session, 7001, None)  # a notice, answering nothing
                await asyncio.sleep(0.3)
                await bot_sends(session, 7001, 1)

            started = time.monotonic()
            _sent, _ = await asyncio.gather(customer.say("where is my parcel?"), bot())
            waited = time.monotonic() - started
            await asyncio.sleep(0.1)
            return waited, customer.inbox(), other.inbox()

    waited, mine, theirs = asyncio.run(scenario())
    assert 0.5 < waited < 5.0
    assert mine == ["to 7001", "to 7001"]
    assert theirs == ["to 7002"]


def test_a_duplicated_reply_is_flagged() -> None:
    once = answered("1", "Here are three jackets", "Anything else?")
    twice = answered("2", "Here are three jackets", "Here are three jackets")
    verdict = judge_messages([once, twice])
    assert (verdict.turns, verdict.duplicated) == (2, 1)
    assert verdict.duplicated_examples == ["telegram c1 2"]


def test_an_unanswered_message_is_lost_and_notices_are_counted() -> None:
    verdict = judge_messages([answered("1"), answered("2", replies.NOT_HANDLED),
                              answered("3", replies.STORE_DOWN)])
    assert (verdict.lost, verdict.turns, verdict.busy, verdict.errors) == (1, 2, 1, 1)


def test_agent_replies_lost_or_duplicated_are_flagged() -> None:
    sent = [AgentReply("telegram:1", "[ref T-1-0]", 1.0),
            AgentReply("telegram:1", "[ref T-1-1]", 1.0),
            AgentReply("slack:T:D1:1.0", "[ref T-2-0]", 1.0)]
    received = {"telegram:1": ["Sam: on it [ref T-1-0]", "Sam: on it [ref T-1-0]"],
                "slack:T:D1:1.0": ["Sam: hello [ref T-2-0]"]}
    assert judge_agent_replies(sent, received) == {
        "sent": 3, "received": 2, "lost": 1, "duplicated": 1
    }


def test_a_secret_in_any_log_is_found(tmp_path: Path) -> None:
    (tmp_path / "clean.log").write_text("info telegram.polling base_url=http://127.0.0.1\n")
    (tmp_path / "leaky.log").write_text("debug GET /bot7100:s3cr3t-token/getUpdates\n")
    found = secrets_in_logs({"telegram_token": "7100:s3cr3t-token", "redis_password": "pw-x"},
                            sorted(tmp_path.glob("*.log")))
    assert found == {"telegram_token": ["leaky.log"]}


def test_only_refusals_logged_by_the_bots_excuse_a_flooded_message(tmp_path: Path) -> None:
    (tmp_path / "bot.log").write_text(
        "warning turn.done conversation=telegram:9 platform=telegram decision=rate_limited "
        "button=False notice=True ms=0.1\n"
        "info    turn.done conversation=telegram:9 platform=telegram decision=rate_limited "
        "button=False notice=False ms=0.1\n"
        "info    turn.done conversation=telegram:99 platform=telegram decision=rate_limited "
        "button=False notice=False ms=0.1\n"
        "info    turn.done conversation=telegram:9 platform=telegram intent=greeting "
        "decision=small_talk source=local ms=20.1\n"
    )
    # The notice answered its message; another chat's refusal excuses nothing here.
    assert silent_refusals("telegram:9", [tmp_path / "bot.log"]) == 1


def test_latency_outside_fault_windows_leaves_out_overlapping_waits() -> None:
    calm = answered("1", "ok", sent_at=10.0, at=10.1)
    slow = answered("2", "ok", sent_at=20.0, at=25.0)  # waited through the fault at 22-23
    figures = latency_figures([calm, slow], windows=[(22.0, 23.0)])
    assert figures["p99_ms"] == 5000.0
    assert figures["p99_ms_calm"] == 100.0


def test_faults_are_chosen_and_spread_over_the_run() -> None:
    assert chosen_faults("none", flood=True) == ("flood",)
    assert "redis_restart" in chosen_faults("all")
    windows = schedule(chosen_faults("worker_kill,bot_term"), 60.0)
    assert [w.fault for w in windows] == ["worker_kill", "bot_term"]
    assert windows[0].offset_s + windows[0].length_s <= windows[1].offset_s
    assert windows[-1].offset_s + windows[-1].length_s <= 60.0


def test_only_answers_of_turns_that_ran_are_expected_in_the_state() -> None:
    assert saved_a_turn(answered("1", "Here are some ideas"))
    for apology in (replies.STORE_DOWN, replies.INTERNAL_ERROR, replies.NOT_HANDLED,
                    replies.TOO_FAST):
        assert not saved_a_turn(answered("2", apology))
    assert not saved_a_turn(Sent("telegram", "c1", "3", "hi", 1.0))
