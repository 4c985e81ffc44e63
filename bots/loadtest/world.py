"""The processes a load run starts, each in a process group of its own so that a fault (or the
end of the run, or Ctrl-C) reaches every child: its own Redis, Celery workers, bot processes,
and the OpenAI-compatible LLM stand-in it serves itself.

Nothing here touches the machine's own services: the Redis is a fresh `redis-server` on a free
port with a generated password, and every process runs in the run's folder (no `.env` there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import redis
from aiohttp import web

REDIS_SERVER = "/usr/bin/redis-server"
STOP_S = 15.0


def group_cpu_s(group: int, only: int | None = None) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group (or
    by the one process `only`), read from /proc: where a run's CPU went."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat" if only is None else f"{only}/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        # After the command name: state, ppid, pgrp, ... utime (12th), stime (13th).
        if only is not None or int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Service:
    """One long-running process (and its children) with its output in `logs/<name>-<n>.log`."""

    name: str
    command: list[str]
    env: dict[str, str]
    logs: Path
    stdin_text: str | None = None  # written to stdin once (redis-server reads its config so)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    cpu_s: float = 0.0  # CPU seconds its processes used, summed over its starts


    def start(self) -> Service:
        self.starts += 1
        log = (self.logs / f"{self.name}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.logs,
            env=self.env,
            stdin=subprocess.PIPE if self.stdin_text is not None else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signals reach its children
        )
        log.close()
        if self.stdin_text is not None:
            assert self.process.stdin is not None
            self.process.stdin.write(self.stdin_text.encode())
            self.process.stdin.close()
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Whether the process ended within `timeout` seconds."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_S) -> None:
        """`sig` to the group, then SIGKILL to whatever is left of it."""
        if self.process is None:
            return
        self.cpu_s += group_cpu_s(self.process.pid)
        self.send(sig)
        if not self.wait(timeout):
            self.send(signal.SIGKILL)
            self.wait(5)
        # Children that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class RedisServer:
    """A `redis-server` of the run's own, with a password, on a free port, persisting as the
    compose file's does (an append-only file, fsynced every second), in the run's folder."""

    port: int
    password: str
    logs: Path
    service: Service | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> RedisServer:
        data = self.logs / "redis-data"
        data.mkdir(exist_ok=True)
        # The config comes on stdin, so the password is in no command line (`ps`) and no log.
        config = (
            f"port {self.port}\nbind 127.0.0.1\nsave \"\"\ndir {data}\n"
            "appendonly yes\nappendfsync everysec\n"
            f"requirepass {self.password}\nloglevel notice\n"
        )
        if self.service is None:
            command = [REDIS_SERVER, "-"]
            self.service = Service("redis", command, dict(os.environ), self.logs, config)
        self.service.start()
        deadline = time.monotonic() + timeout
        while not self.ping():
            if not self.service.alive or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                             socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def shutdown(self) -> None:
        """SHUTDOWN, as an orchestrator stops it: the append-only file is flushed, and a start
        afterwards reloads it."""
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                             socket_timeout=2)
        try:
            client.shutdown()
        except redis.RedisError:
            pass  # the server closes the connection as it goes: that is the answer
        finally:
            client.close()
        if self.service is not None and not self.service.wait(10):
            self.service.stop(signal.SIGKILL)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop(signal.SIGKILL)


LlmMode = Literal["ok", "timeout", "garbage"]
MESSAGE_MARK = re.compile(r"<<<MESSAGE\s*(.*?)\s*(?:MESSAGE>>>|>>>|$)", re.S)
# What the stand-in says a message means: enough for the cascade to act on (first match wins).
LLM_WORDS: tuple[tuple[str, str], ...] = (
    ("person", "human_agent"), ("human", "human_agent"), ("agent", "human_agent"),
    ("order", "order_status"), ("refund", "return_refund"), ("return", "return_refund"),
    ("ship", "shipping"), ("deliver", "shipping"), ("pay", "payment"),
    ("hello", "greeting"), ("hi ", "greeting"),
    ("need", "recommend"), ("looking", "recommend"), ("want", "recommend"),
)


@dataclass
class LlmStandIn:
    """An OpenAI-compatible chat-completions endpoint on the harness's event loop.

    `mode` is what it does now: "ok" answers the understanding schema from a few words of the
    message, "timeout" holds each request past the client's timeout, "garbage" answers 200
    with a body that is not JSON. It checks the API key, as a real endpoint would.
    """

    api_key: str
    hold_s: float
    mode: LlmMode = "ok"
    requests: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int) -> LlmStandIn:
        application = web.Application()
        application.router.add_post("/v1/chat/completions", self._completion)
        self._runner = web.AppRunner(application, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = port
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _completion(self, request: web.Request) -> web.Response:
        self.requests += 1
        mode = self.mode
        self.by_mode[mode] = self.by_mode.get(mode, 0) + 1
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        body = await request.json()
        if mode == "timeout":
            await asyncio.sleep(self.hold_s)
        if mode == "garbage":
            return web.Response(text="<html>upstream proxy error</html>", status=200,
                                content_type="application/json")
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        found = MESSAGE_MARK.search(prompt)
        text = (found.group(1) if found else prompt).lower() + " "
        intent = next((name for word, name in LLM_WORDS if word in text), "other")
        verdict = {"intent": intent, "sentiment": "neutral", "confidence": 0.8}
        return web.json_response({
            "id": "chatcmpl-load", "object": "chat.completion", "created": int(time.time()),
            "model": "stand-in",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(verdict)}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


def python_module(module: str, *args: str) -> list[str]:
    """The command running `module` with this interpreter (the checkout's code on PYTHONPATH)."""
    return [sys.executable, "-m", module, *args]
