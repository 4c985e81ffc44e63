"""Delay from an agent's reply in Slack to the customer's Telegram chat, through real processes.

    python -m tests.e2e.bench_handover [--replies 50] [--backend sqlite|redis|both]

A Telegram customer escalates, an agent claims the ticket, then writes N replies in the ticket's
thread (signed Slack events to the Slack bot process). The clock starts when the event is sent
and stops when the telegram-test-api emulator receives the Telegram bot process's sendMessage
(both on this machine's clock). Prints one line per backend and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.infra.percentiles import median, percentile
from tests.bots.peers import TelegramEmulator, wait_until
from tests.e2e.handover_world import (
    DANA,
    SLOW,
    SUPPORT,
    deliver,
    desk_button,
    message,
    press,
    running,
    telegram_says,
    telegram_texts,
    thread_ts,
    ticket_in_channel,
)

POLL_S = 0.05  # how often the emulator is asked whether the reply arrived


def measure(world: dict[str, Any], replies: int) -> list[float]:
    emulator: TelegramEmulator = world["emulator"]
    chat = 8001
    emulator.send("my order is late!", chat_id=chat, user_id=chat)
    wait_until(lambda: telegram_texts(emulator, chat), SLOW)  # the assistant answered
    emulator.send("I want a person", chat_id=chat, user_id=chat)
    ticket = ticket_in_channel(world)
    press(
        world["url"],
        DANA,
        SUPPORT,
        {"ts": thread_ts(ticket), "text": "t"},
        desk_button(ticket, "claim"),
    )
    telegram_says(emulator, chat, "has picked up your request")
    samples: list[float] = []
    for n in range(replies):
        time.sleep(0.05 + random.random() * 0.1)  # replies arrive at random moments
        words = f"reply number {n}"
        sent = time.time()
        deliver(world["url"], message(SUPPORT, DANA, words, thread_ts(ticket), "channel"))
        # The emulator stamps the arrival itself, so polling every 50 ms costs no accuracy and
        # leaves the two shared cores to the bot processes being measured.
        at = wait_until(_arrival(emulator, chat, words), SLOW, POLL_S)
        samples.append((at - sent) * 1000)
    return samples


def _arrival(emulator: TelegramEmulator, chat: int, words: str) -> Callable[[], float]:
    """When the emulator received the bot's message ending in `words` (0.0: not yet)."""

    def received_at() -> float:
        for call in emulator.calls("sendMessage"):
            body = call["body"]
            if body.get("chat_id") == str(chat) and str(body.get("text", "")).endswith(words):
                return float(call["at"]) / 1000
        return 0.0

    return received_at


def summary(samples: Sequence[float]) -> dict[str, float | int]:
    return {
        "replies": len(samples),
        "median_ms": round(median(samples), 1),
        "p99_ms": round(percentile(samples, 99), 1),
        "max_ms": round(max(samples), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--replies", type=int, default=50, help="agent replies timed")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "redis", "both"),
        default="both",
        help="where state, tickets and deliveries live",
    )
    args = parser.parse_args(argv)
    backends = ("sqlite", "redis") if args.backend == "both" else (args.backend,)
    results: dict[str, dict[str, float | int]] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, running(backend, Path(tmp)) as world:
            results[backend] = summary(measure(world, args.replies))
        figures = results[backend]
        print(
            f"Slack agent reply -> Telegram customer ({backend}, 2 bot processes): "
            f"{figures['replies']} replies, median {figures['median_ms']} ms, "
            f"p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
        )
    print(json.dumps({"slack_to_telegram_handover": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
