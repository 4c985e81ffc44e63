"""Local stand-ins for the platforms' servers, speaking their real protocols on 127.0.0.1.

(`TelegramEmulator`, `SlackWebApi` and the HTTP helpers live in `bots/loadtest/peers.py` and
are imported from here.)

- `TelegramEmulator`: the npm `telegram-test-api` emulator (through our launcher) in a node
  process, plus the client side of a Telegram user (send messages, press buttons, read replies).
- `SlackWebApi`: a stand-in Slack Web API that records every call and can answer 429; it opens
  DMs (`conversations.open`) and takes ephemeral messages (`chat.postEphemeral`).
- `SocketModeServer`: a stand-in Socket Mode WebSocket endpoint (the `websockets` package).
- `LoopThread`: an asyncio loop in a thread, to run an adapter next to synchronous tests.

Used by tests/bots and by the adapter latency benchmark.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

# The platform stand-ins live in the package, for `concierge bench load`; tests import them here.
from bots.loadtest.peers import (  # noqa: F401
    BOT_ID,
    BOT_USER,
    BOT_USERNAME,
    EMULATOR_DIR,
    TEAM,
    SlackWebApi,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    post_json,
    signed_headers,
    slack_signature,
)

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """The first truthy value of `condition()`, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_for(fetch: Callable[[], list[T]], count: int, timeout: float = 10.0) -> list[T]:
    """`fetch()` once it returns at least `count` items."""
    return wait_until(lambda: items if len(items := fetch()) >= count else [], timeout)


def settled(fetch: Callable[[], T], quiet: float = 0.3, timeout: float = 10.0) -> T:
    """`fetch()` once its value has stayed the same for `quiet` seconds: to check that nothing
    more arrives after what a test waited for. Call it after waiting for the event that must
    come first (the reply was posted, the job started), so the quiet period starts from there;
    anything that arrives resets it. AssertionError if the value still changes at `timeout`."""
    deadline = time.monotonic() + timeout
    value = fetch()
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout}s: {value!r}")
        time.sleep(min(0.02, quiet / 5))
        latest = fetch()
        if latest != value:
            value, since = latest, time.monotonic()
    return value


class LoopThread:
    """An event loop running in a daemon thread; `run` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def serve_on(application: web.Application, port: int) -> web.AppRunner:
    """Serve an aiohttp application (an adapter's HTTP endpoint) on 127.0.0.1:`port`; run it on
    a `LoopThread` and `cleanup()` the runner to stop."""
    runner = web.AppRunner(application)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# -- Telegram ---------------------------------------------------------------------------------


async def start_polling(application: Any) -> None:
    """Start a python-telegram-bot Application polling the emulator (quickly, for tests)."""
    await application.initialize()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.02)
    await application.start()


async def stop_application(application: Any) -> None:
    """Stop a python-telegram-bot Application started with its updater (polling or webhook)."""
    assert application.updater is not None
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


# -- Slack -------------------------------------------------------------------------------------


class SocketModeServer:
    """A stand-in Socket Mode endpoint: says hello, pushes envelopes, collects the acks."""

    def __init__(self, loop_thread: LoopThread) -> None:
        self.loop_thread = loop_thread
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/link"
        self.acks: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._connection: Any = None
        self._server: Any = None

    async def _serve(self, connection: Any) -> None:
        self._connection = connection
        hello = {
            "type": "hello",
            "num_connections": 1,
            "connection_info": {"app_id": "A0TEST"},
            "debug_info": {"host": "standin"},
        }
        await connection.send(json.dumps(hello))
        self.connected.set()
        async for message in connection:
            self.acks.append(json.loads(message))

    def start(self) -> SocketModeServer:
        from websockets.asyncio.server import serve

        async def start() -> Any:
            return await serve(self._serve, "127.0.0.1", self.port)

        self._server = self.loop_thread.run(start())
        return self

    def push(self, envelope: dict[str, Any]) -> None:
        assert self._connection is not None, "no Socket Mode client connected"
        self.loop_thread.run(self._connection.send(json.dumps(envelope)))

    def stop(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        self.loop_thread.run(stop())
