"""Local stand-ins for the platforms' servers, speaking their real protocols on 127.0.0.1.

- `TelegramEmulator`: the npm `telegram-test-api` emulator (through the launcher kept with the
  tests, `tests/bots/telegram_emulator/`) in a node process, plus the client side of a Telegram
  user (send messages, press buttons, read replies).
- `SlackWebApi`: a stand-in Slack Web API that records every call and can answer 429; it opens
  DMs (`conversations.open`) and takes ephemeral messages (`chat.postEphemeral`). `listeners`
  hear each call as it is answered (the load harness waits on them instead of polling).

They live in the package (not only in tests/) because `concierge bench load` drives the real
adapters through them; the tests import them from `tests/bots/peers.py`, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

# The launcher and its node_modules stay with the tests; a source checkout has both.
EMULATOR_DIR = Path(__file__).resolve().parents[2] / "tests" / "bots" / "telegram_emulator"
BOT_ID = 666  # the emulator's getMe id
BOT_USERNAME = "ConciergeTestBot"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post_json(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    return post_bytes(url, data, {"Content-Type": "application/json", **(headers or {})})


def post_bytes(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.strip() else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


# -- Telegram ---------------------------------------------------------------------------------


class TelegramEmulator:
    """The emulator in a node process, and a Telegram user talking to the bot through it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self._message_date = int(time.time())

    def start(self) -> TelegramEmulator:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("the Telegram emulator needs Node.js 18+ and npm on PATH")
        if not (EMULATOR_DIR / "node_modules" / "telegram-test-api").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EMULATOR_DIR, check=True)
        self.process = subprocess.Popen(
            ["node", "launcher.js", str(self.port)],
            cwd=EMULATOR_DIR,
            stdin=subprocess.PIPE,  # the emulator exits when this closes, even if we crash
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"the Telegram emulator did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()

    # The user's side.

    def user(self, user_id: int = 1001, name: str = "Dana") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower()}

    def chat(self, chat_id: int = 1001, kind: str = "private") -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = "Dana"
        else:
            chat["title"] = "Shop group"
        return chat

    def send(
        self,
        text: str | None = None,
        chat_id: int = 1001,
        user_id: int = 1001,
        kind: str = "private",
        **fields: Any,
    ) -> None:
        """A user's message: text, or other content such as `sticker=...`."""
        message: dict[str, Any] = {
            "botToken": self.token,
            "from": self.user(user_id),
            "chat": self.chat(chat_id, kind),
            "date": int(time.time()),
            **fields,
        }
        if text is not None:
            message["text"] = text
        status, _ = post_json(f"{self.url}/sendMessage", message)
        assert status == 200

    def press(self, bot_message: dict[str, Any], data: str, user_id: int = 1001) -> None:
        """The user presses the inline button with callback `data` under `bot_message`."""
        chat_id = int(bot_message["message"]["chat_id"])
        message = {
            "message_id": bot_message["messageId"],
            "date": int(time.time()),
            "chat": self.chat(chat_id, "private" if chat_id > 0 else "group"),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Concierge Test"},
            "text": bot_message["message"].get("text", ""),
        }
        callback = {
            "botToken": self.token,
            "from": self.user(user_id),
            "message": message,
            "data": data,
        }
        status, _ = post_json(f"{self.url}/sendCallback", callback)
        assert status == 200

    def history(self, token: str | None = None) -> list[dict[str, Any]]:
        """Every stored update of the bot `token` (default: this emulator's): the bot's
        messages have a `message.chat_id`, users' don't."""
        _, body = post_json(f"{self.url}/getUpdatesHistory", {"token": token or self.token})
        return list(body["result"])

    def bot_messages(self, chat_id: int = 1001) -> list[dict[str, Any]]:
        return [
            item
            for item in self.history()
            if str(item.get("message", {}).get("chat_id")) == str(chat_id)
        ]

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/control/calls", timeout=10) as response:
            calls = json.loads(response.read())["result"]
        return [call for call in calls if method is None or call["method"] == method]

    def throttle(self, method: str, count: int, retry_after: int) -> None:
        body = {"method": method, "count": count, "retry_after": retry_after}
        assert post_json(f"{self.url}/control/throttle", body)[0] == 200

    def never_started(self, user_id: int) -> None:
        """The user never opened a private chat with the bot: Telegram refuses to message them."""
        assert post_json(f"{self.url}/control/unstarted", {"chat_id": user_id})[0] == 200

    def redeliver_last(self) -> None:
        """Deliver the latest user update again, as Telegram does when a delivery seems lost."""
        assert post_json(f"{self.url}/control/redeliver", {"update_id": "last"})[0] == 200


# -- Slack ------------------------------------------------------------------------------------

TEAM = "T0TEST"
BOT_USER = "UBOT"


class SlackWebApi:
    """A stand-in Slack Web API on 127.0.0.1: answers like Slack, records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        # Each answered call, as it is answered (on the server's thread).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.throttles: dict[str, tuple[int, int]] = {}
        self.socket_url = ""
        self._counter = 0
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SlackWebApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def throttle(self, method: str, count: int, retry_after: int) -> None:
        with self._lock:
            self.throttles[method] = (count, retry_after)

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Bodies of chat.postMessage calls that were answered ok, in order."""
        with self._lock:
            calls = list(self.calls)
        return [
            call["body"]
            for call in calls
            if call["method"] == "chat.postMessage"
            and call["status"] == 200
            and (channel is None or call["body"].get("channel") == channel)
        ]

    def posted_ts(self, channel: str) -> list[str]:
        """The ts Slack gave each message posted in `channel`, in order."""
        with self._lock:
            calls = list(self.calls)
        return [
            call["answer"]["ts"]
            for call in calls
            if call["method"] == "chat.postMessage"
            and call["body"].get("channel") == channel
            and "ts" in call.get("answer", {})
        ]

    def ephemeral(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Bodies of chat.postEphemeral calls, in order."""
        with self._lock:
            calls = list(self.calls)
        return [
            call["body"]
            for call in calls
            if call["method"] == "chat.postEphemeral"
            and (channel is None or call["body"].get("channel") == channel)
        ]

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path, _, query = request.path.partition("?")
        method = path.removeprefix("/api/")
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode()
        # Slack takes arguments in the query string as well as the body (the SDK sends some
        # methods' arguments, conversations.open's among them, as query parameters).
        body: dict[str, Any] = dict(parse_qsl(query))
        if "json" in (request.headers.get("Content-Type") or ""):
            body |= json.loads(raw or "{}")
        else:
            body |= dict(parse_qsl(raw))
        with self._lock:
            count, retry_after = self.throttles.get(method, (0, 0))
            limited = count > 0
            if limited:
                self.throttles[method] = (count - 1, retry_after)
            self._counter += 1
            serial = self._counter
            call: dict[str, Any] = {
                "method": method,
                "body": body,
                "status": 429 if limited else 200,
                "authorization": request.headers.get("Authorization"),
                "at": time.time(),
            }
            self.calls.append(call)
        if limited:
            answer: dict[str, Any] = {"ok": False, "error": "ratelimited"}
            self._send(request, 429, answer, {"Retry-After": str(retry_after)})
            return
        if method == "auth.test":
            answer = {
                "ok": True,
                "url": "https://concierge-test.slack.com/",
                "team": "Test",
                "user": "concierge",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": "BBOT",
            }
        elif method == "chat.postMessage":
            ts = f"{int(time.time())}.{serial:06d}"
            answer = {
                "ok": True,
                "channel": body.get("channel"),
                "ts": ts,
                "message": {"text": body.get("text"), "ts": ts, "bot_id": "BBOT"},
            }
        elif method == "chat.postEphemeral":
            answer = {"ok": True, "message_ts": f"{int(time.time())}.{serial:06d}"}
        elif method == "conversations.open":
            # The DM with the one user named (Slack answers the same channel every time).
            user = str(body.get("users", "")).split(",")[0]
            answer = {"ok": True, "channel": {"id": f"D{user}"}}
        elif method == "apps.connections.open":
            answer = {"ok": True, "url": self.socket_url}
        else:
            answer = {"ok": True}
        with self._lock:
            call["answer"] = answer
            listeners = list(self.listeners)
        self._send(request, 200, answer, {})
        for listener in listeners:
            listener(call)

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, timestamp: int | None = None, content_type: str = "application/json"
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
    }


def event_body(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An Events API `event_callback` envelope around `event`."""
    return {
        "token": "unused",
        "team_id": TEAM,
        "api_app_id": "A0TEST",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }


