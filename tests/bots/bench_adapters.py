"""Latency through each chat adapter: platform message in -> reply posted, against local peers.

    python -m tests.bots.bench_adapters [--messages 100] [--core echo|conversation]

Paths measured: Telegram long polling and webhook (the telegram-test-api emulator), Slack HTTP
Events API (signed requests) and Socket Mode (a local WebSocket endpoint), each with its
stand-in Web API. The clock starts when the platform side sends the message and stops when the
peer receives the reply's sendMessage / chat.postMessage call (both on this machine's clock).

`--core echo` answers at once with three buttons, so the figures are the adapters' own cost;
`--core conversation` runs the real core from `bots.wiring.build_conversation(settings)`.
Prints one line per path (with the median time spent inside the core's turn, so the adapter's
own share is the difference) and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bots import telegram
from bots.channel import Handler
from bots.ledger.sqlite import SqliteLedger
from bots.slack import customers as slack
from core.infra import logs
from core.infra.percentiles import median, percentile
from core.infra.settings import Settings
from core.turn.messages import Button, CollectingOutbox, Incoming, Outbox, Reply
from tests.bots.peers import (
    LoopThread,
    SlackWebApi,
    SocketModeServer,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    serve_on,
    signed_headers,
    stop_application,
    wait_until,
)

SECRET = "bench-signing-secret"
ECHO_BUTTONS = (
    Button("More like this", "more:P0123:1"),
    Button("Not for me", "skip:P0123:1"),
    Button("Details", "details:P0123:1"),
)
MESSAGES = (
    "I need a waterproof jacket under $100",
    "something cheaper",
    "where is order 48213?",
    "what is your return policy?",
)


def echo(incoming: Incoming, outbox: Outbox) -> None:
    outbox.send(Reply(f"You said: {incoming.text}", buttons=ECHO_BUTTONS))


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "median_ms": round(median(samples_ms), 1),
        "p99_ms": round(percentile(samples_ms, 99), 1),
        "max_ms": round(max(samples_ms), 1),
    }


class TimedHandler:
    """Wraps the core's handle and keeps each turn's duration, to tell core from adapter time."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.turns_ms: list[float] = []

    def __call__(self, incoming: Incoming, outbox: Outbox) -> None:
        started = time.perf_counter()
        self.handle(incoming, outbox)
        self.turns_ms.append((time.perf_counter() - started) * 1000)


def measure(
    count: int,
    interval: float,
    send: Callable[[int], None],
    replied_at: Callable[[int], float | None],
) -> list[float]:
    """Send message i, wait for its reply; latency = reply time - send time, in ms."""
    samples: list[float] = []
    for i in range(count):
        sent = time.time()
        send(i)
        # The peer stamps the reply, so polling slowly loses no accuracy and steals less CPU.
        at = wait_until(partial(replied_at, i), timeout=30, interval=0.02)
        assert at is not None  # wait_until returns only a truthy value
        samples.append((at - sent) * 1000)
        time.sleep(interval)
    return samples


def telegram_path(
    handler: Handler,
    count: int,
    interval: float,
    webhook: bool,
    poll_interval: float,
    workdir: Path,
) -> list[float]:
    token = "3000:bench-webhook" if webhook else "3000:bench-polling"
    emulator = TelegramEmulator(token).start()
    settings = Settings(telegram_token=SecretStr(token), telegram_base_url=emulator.url,
                        telegram_webhook_secret=SecretStr("bench-webhook-secret"))
    ledger = SqliteLedger(workdir / f"{token}.db", 3600)
    adapter = telegram.telegram_adapter(settings, handler, ledger)
    application = adapter.application
    assert application.updater is not None
    loop = LoopThread()
    port = free_port()

    async def start() -> None:
        await application.initialize()
        assert application.updater is not None
        if webhook:
            await application.updater.start_webhook(
                listen="127.0.0.1",
                port=port,
                url_path="telegram",
                webhook_url=f"http://127.0.0.1:{port}/telegram",
                secret_token=telegram.webhook_secret(settings),
            )
        else:
            await application.updater.start_polling(poll_interval=poll_interval)
        await application.start()

    async def stop() -> None:
        await stop_application(application)

    # Each message from its own customer (a fresh conversation), never reused across paths.
    first_chat = 2_000_000 if webhook else 1_000_000

    def send(i: int) -> None:
        text = f"{MESSAGES[i % len(MESSAGES)]} #{i}"
        emulator.send(text, chat_id=first_chat + i, user_id=first_chat + i)

    def replied_at(i: int) -> float | None:
        chat = str(first_chat + i)
        sent = [c for c in emulator.calls("sendMessage") if c["body"].get("chat_id") == chat]
        return sent[0]["at"] / 1000 if sent else None

    try:
        loop.run(start())
        return measure(count, interval, send, replied_at)
    finally:
        loop.run(stop())
        loop.close()
        emulator.stop()


def slack_path(
    handler: Handler, count: int, interval: float, socket_mode: bool, workdir: Path
) -> list[float]:
    api = SlackWebApi().start()
    loop = LoopThread()
    port = free_port()
    settings = Settings(
        slack_mode="socket" if socket_mode else "http",
        slack_bot_token=SecretStr("xoxb-bench"),
        slack_signing_secret=SecretStr(SECRET),
        slack_app_token=SecretStr("xapp-bench"),
        slack_api_url=api.base_url,
        slack_port=port,
    )
    ledger = SqliteLedger(workdir / f"slack-{settings.slack_mode}.db", 3600)
    adapter = slack.slack_adapter(settings, handler, ledger)
    server: SocketModeServer | None = None
    closers: list[Callable[[], Any]] = []
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        server = SocketModeServer(loop).start()
        api.socket_url = server.url

        async def connect() -> AsyncSocketModeHandler:
            connection = AsyncSocketModeHandler(adapter.app, "xapp-bench")  # needs a running loop
            await connection.connect_async()
            return connection

        handler_ = loop.run(connect())
        assert server.connected.wait(10)
        closers.append(lambda: loop.run(handler_.close_async()))
        closers.append(server.stop)
    else:
        runner = loop.run(serve_on(slack.http_app(adapter, settings), port))
        closers.append(lambda: loop.run(runner.cleanup()))
    url = f"http://127.0.0.1:{port}{settings.slack_path}"

    def thread(i: int) -> str:
        """Message i's ts: a new thread, so a new conversation, which its reply is posted in."""
        return f"{1700002000 if socket_mode else 1700001000}.{i:06d}"

    def send(i: int) -> None:
        ts = thread(i)
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": "DBENCH",
            "user": "U1",
            "text": f"{MESSAGES[i % len(MESSAGES)]} #{i}",
            "ts": ts,
            "event_ts": ts,
        }
        body = event_body(event, f"EvBench{i}")
        if server is not None:
            server.push(
                {
                    "envelope_id": f"env-{i}",
                    "type": "events_api",
                    "payload": body,
                    "accepts_response_payload": False,
                    "retry_attempt": 0,
                    "retry_reason": "",
                }
            )
            return
        data = json.dumps(body).encode()
        status, _ = post_bytes(url, data, signed_headers(SECRET, data))
        assert status == 200, status

    def replied_at(i: int) -> float | None:
        # Paired by thread, not by order of posting: a late or extra post of another message
        # cannot be taken for this one's reply.
        replies = [
            c
            for c in list(api.calls)
            if c["method"] == "chat.postMessage"
            and c["status"] == 200
            and c["body"].get("thread_ts") == thread(i)
        ]
        return float(replies[0]["at"]) if replies else None

    try:
        return measure(count, interval, send, replied_at)
    finally:
        for close in closers:  # the client first, so it does not reconnect to a closing server
            close()
        loop.close()
        api.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge bench adapters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--messages", type=int, default=100, help="messages per path (default: %(default)s)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.05,
        help="pause between messages, s (keeps within Telegram's 30 msg/s; default: %(default)s)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.01,
        help="getUpdates pause for the emulator, which ignores long-poll timeouts "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--core",
        choices=["echo", "conversation"],
        default="echo",
        help="echo: the adapters' own cost; conversation: the configured core "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    logs.configure("WARNING", Settings().log_format)  # per-turn logs would time the terminal
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        core: Handler = echo
        if args.core == "conversation":
            from bots.wiring import build_conversation

            # The configured core, with its state and tickets in a scratch file.
            # One sender per path at full speed: without the flood limit, which would refuse it.
            settings = Settings(sqlite_path=workdir / "concierge.sqlite3", rate_limit_burst=0)
            core = build_conversation(settings).handle
        handler = TimedHandler(core)
        # One turn before timing: models load lazily on the first message.
        started = time.perf_counter()
        handler(Incoming("bench:warmup", "bench:warmup", text=MESSAGES[0]), CollectingOutbox())
        warmup_ms = round((time.perf_counter() - started) * 1000, 1)
        print(f"core warm-up turn: {warmup_ms:.1f} ms (not counted)", flush=True)
        paths: dict[str, Callable[[], list[float]]] = {
            "telegram_polling": lambda: telegram_path(
                handler, args.messages, args.interval, False, args.poll_interval, workdir
            ),
            "telegram_webhook": lambda: telegram_path(
                handler, args.messages, args.interval, True, args.poll_interval, workdir
            ),
            "slack_http": lambda: slack_path(handler, args.messages, args.interval, False, workdir),
            "slack_socket": lambda: slack_path(
                handler, args.messages, args.interval, True, workdir
            ),
        }
        for name, run in paths.items():
            handler.turns_ms.clear()
            results[name] = summary(run())
            figures = results[name]
            figures["core_turn_median_ms"] = round(median(handler.turns_ms), 1)
            print(
                f"{name:18} n={args.messages} median={figures['median_ms']:.1f} ms "
                f"p99={figures['p99_ms']:.1f} ms max={figures['max_ms']:.1f} ms "
                f"(core turn median {figures['core_turn_median_ms']:.1f} ms)",
                flush=True,
            )
    print(
        json.dumps(
            {
                "bench": "adapters",
                "core": args.core,
                "messages": args.messages,
                "poll_interval_s": args.poll_interval,
                "warmup_ms": warmup_ms,
                **results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
