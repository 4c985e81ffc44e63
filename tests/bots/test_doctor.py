"""`concierge doctor` against good and broken configurations, as a user would run it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bots.doctor import signing_secret_problem, slack_token_problem, telegram_token_problem
from tests.processes import clean_env

GOOD_TELEGRAM = "123456789:" + "A" * 20 + "b_-" + "9" * 12
GOOD_SECRET = "0123456789abcdef" * 2


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def built_models(tmp_path: Path) -> Path:
    """A models folder as the training commands leave it (the doctor checks presence and
    version, it does not load them)."""
    models = tmp_path / "models"
    for name in ("nlu/nlu.json", "nlu/nlu.npz", "recommender-demo/model.pt"):
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(name.encode())
    return models


def doctor(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    """Runs the doctor in an empty folder (no .env) with only these CONCIERGE_ settings."""
    defaults = {"sqlite_path": str(tmp_path / "state.sqlite3"),
                "models_dir": str(built_models(tmp_path))}
    clean = clean_env(**(defaults | env))
    done = subprocess.run([sys.executable, "-m", "bots.doctor", *args], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("token", "problem"), [
    (GOOD_TELEGRAM, None),
    ("123456789" + "A" * 35, "has no ':'"),
    ("bot123:" + "A" * 35, "numeric id"),
    ("123456789:" + "A" * 34, "34 characters after"),
    (f'"{GOOD_TELEGRAM}"', "quotes"),
    (f"{GOOD_TELEGRAM}\n", "line break"),
])
def test_telegram_token_shapes(token: str, problem: str | None) -> None:
    found = telegram_token_problem(token)
    assert found is None if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("token", "prefix", "problem"), [
    ("xoxb-1234-5678-abcDEF", "xoxb-", None),
    ("xapp-1-A123-456-abc", "xapp-", None),
    ("xoxp-1234-5678-abc", "xoxb-", "user token"),
    ("xoxb-1234-5678-abc", "xapp-", "bot token"),
    ("1234-5678", "xoxb-", "does not start with xoxb-"),
    ("xoxb-12 34", "xoxb-", "characters"),
])
def test_slack_token_shapes(token: str, prefix: str, problem: str | None) -> None:
    found = slack_token_problem(token, prefix)
    assert found is None if problem is None else (found is not None and problem in found)


def test_signing_secret_shapes() -> None:
    assert signing_secret_problem(GOOD_SECRET) is None
    assert "expected 32" in str(signing_secret_problem(GOOD_SECRET[:30]))
    assert "not hexadecimal" in str(signing_secret_problem("z" * 32))


def test_good_embedded_configuration_passes(tmp_path: Path) -> None:
    code, out = doctor(tmp_path)
    assert code == 0, out
    assert "all " in out and "checks passed" in out
    assert "ok    store" in out


def test_redis_down_is_named_with_the_fix(tmp_path: Path) -> None:
    port = closed_port()
    code, out = doctor(tmp_path, state_backend="redis",
                       redis_url=f"redis://:hunter2@127.0.0.1:{port}/15")
    assert code == 1
    assert f"Redis at redis://:***@127.0.0.1:{port}/15 is not reachable" in out
    assert "CONCIERGE_REDIS_URL" in out and "hunter2" not in out


def test_redis_up_passes(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, "--json", state_backend="redis",
                       redis_url="redis://127.0.0.1:6379/15")
    assert code == 0, out
    state = next(json.loads(line) for line in out.splitlines() if '"state"' in line)
    assert state["status"] == "ok" and "answered PING" in state["detail"]


def test_missing_store_and_bad_setting_are_reported(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, store_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert code == 1 and "has no schema yet" in out and "concierge store import --demo" in out
    code, out = doctor(tmp_path, state_backend="mongodb")
    assert code == 2 and "CONCIERGE_STATE_BACKEND" in out


def test_unreachable_store_is_named_without_its_password(tmp_path: Path) -> None:
    port = closed_port()
    code, out = doctor(tmp_path, store_url=f"postgresql://shop:hunter2@127.0.0.1:{port}/shop")
    assert code == 1
    assert f"postgresql+psycopg://shop:***@127.0.0.1:{port}/shop" in out
    assert "hunter2" not in out
    code, out = doctor(tmp_path, state_backend="mongodb")
    assert code == 2 and "CONCIERGE_STATE_BACKEND" in out


class OpenAiStandIn:
    """An OpenAI-compatible chat completions endpoint on 127.0.0.1 answering `content`."""

    def __init__(self, content: str) -> None:
        self.content = content
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append(body)
                payload = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": stand_in.content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm() -> Iterator[OpenAiStandIn]:
    stand_in = OpenAiStandIn('{"intent": "order_status", "sentiment": "neutral", '
                             '"confidence": 0.9}')
    yield stand_in
    stand_in.close()


def test_llm_answering_schema_valid_output_passes(tmp_path: Path, llm: OpenAiStandIn) -> None:
    code, out = doctor(tmp_path, understander="llm", llm_base_url=llm.url)
    assert code == 0, out
    assert "answered schema-valid output" in out
    schema = llm.requests[0]["response_format"]["json_schema"]["schema"]
    assert "order_status" in schema["properties"]["intent"]["enum"]


def test_wrong_llm_url_fails_with_the_fix(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code, out = doctor(tmp_path, understander="llm", llm_base_url=url)
    assert code == 1
    assert f"{url} gave no valid answer (connection" in out
    assert "CONCIERGE_LLM_BASE_URL" in out


def test_llm_answering_prose_fails(tmp_path: Path, llm: OpenAiStandIn) -> None:
    llm.content = "It looks like the customer asks about an order."
    code, out = doctor(tmp_path, understander="llm", llm_base_url=llm.url)
    assert code == 1 and "invalid_json" in out and "JSON-schema output" in out


def test_missing_and_malformed_tokens(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, "--for", "telegram")
    assert code == 1 and "CONCIERGE_TELEGRAM_TOKEN is not set" in out and "@BotFather" in out
    code, out = doctor(tmp_path, telegram_token="123456:short")
    assert code == 1 and "5 characters after the ':'" in out and "short" not in out
    code, out = doctor(tmp_path, "--for", "slack", slack_bot_token="xoxp-1-2-3")
    assert code == 1 and "user token" in out and "CONCIERGE_SLACK_SIGNING_SECRET is not set" in out


def test_well_formed_tokens_pass(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, "--for", "telegram", "--for", "slack",
                       telegram_token=GOOD_TELEGRAM, slack_bot_token="xoxb-1-2-abc",
                       slack_signing_secret=GOOD_SECRET)
    assert code == 0, out
    assert "CONCIERGE_TELEGRAM_TOKEN is well-formed" in out
    assert GOOD_TELEGRAM not in out and GOOD_SECRET not in out


def test_models_not_built_says_how_to_build_them(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, models_dir=str(tmp_path / "empty"))
    assert code == 1
    assert f"no model in {tmp_path / 'empty' / 'nlu'}" in out
    assert "build it with `concierge train`" in out
