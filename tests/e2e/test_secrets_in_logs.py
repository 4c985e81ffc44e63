"""No secret in any log line at any level: python-telegram-bot and httpx talking to the Telegram
emulator with logging at DEBUG (they log every request URL, `/bot<TOKEN>/...`, and every
call's parameters), in this process and as `python -m bots.telegram` run by an operator."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bots.telegram import telegram_adapter
from core.infra import logs
from core.infra.settings import Settings
from core.turn import replies
from tests.bots.conftest import Clerk, make_ledger
from tests.bots.peers import (
    LoopThread,
    TelegramEmulator,
    free_port,
    start_polling,
    stop_application,
    wait_for,
)
from tests.e2e.test_adapter_processes import listening, spawn, stop
from tests.processes import clean_env

TOKEN = "4343:secrets-in-logs-token"  # only the settings know it: no shape gives it away
WEBHOOK_SECRET = "webhook-secret-in-logs"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook,
             logging.getLogger("httpx").level)
    yield
    root.handlers[:], root.level, sys.excepthook, threading.excepthook, httpx_level = saved
    logging.getLogger("httpx").setLevel(httpx_level)


def test_telegram_adapter_at_debug_logs_requests_without_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restored_logging: None
) -> None:
    emulator = TelegramEmulator(TOKEN).start()
    settings = Settings(telegram_token=SecretStr(TOKEN), telegram_base_url=emulator.url)
    logs.configure("DEBUG")
    adapter = telegram_adapter(settings, Clerk(), make_ledger(tmp_path / "ledger.sqlite3"))
    application = adapter.application
    loop = LoopThread()

    try:
        loop.run(start_polling(application))
        emulator.send("hello", chat_id=4301, user_id=4301)
        [reply] = wait_for(lambda: emulator.bot_messages(4301), 1)
        assert reply["message"]["text"] == "You said: hello"
    finally:
        loop.run(stop_application(application))
        loop.close()
        emulator.stop()
    written = capsys.readouterr().err
    assert TOKEN not in written and TOKEN.split(":")[1] not in written
    assert "/bot***/sendMessage" in written  # the requests were logged, the token scrubbed


def test_telegram_process_at_debug_logs_neither_token_nor_webhook_secret(tmp_path: Path) -> None:
    emulator = TelegramEmulator(TOKEN).start()
    port = free_port()
    env = clean_env(state_backend="sqlite", sqlite_path=tmp_path / "concierge.sqlite3",
                    log_level="DEBUG", telegram_token=TOKEN, telegram_base_url=emulator.url,
                    telegram_webhook_url=f"http://127.0.0.1:{port}/telegram",
                    telegram_port=str(port), telegram_webhook_secret=WEBHOOK_SECRET)
    log = tmp_path / "telegram.log"
    process = spawn("bots.telegram", env, log)
    try:
        [registered] = wait_for(lambda: emulator.calls("setWebhook"), 1, timeout=60)
        assert registered["body"]["secret_token"] == WEBHOOK_SECRET
        listening(port, process, log)
        emulator.send("hi", chat_id=4302, user_id=4302)
        [reply] = wait_for(lambda: emulator.bot_messages(4302), 1, timeout=60)
        assert reply["message"]["text"] == replies.GREETING
    finally:
        output = stop(process, log)
        emulator.stop()
    assert TOKEN not in output and WEBHOOK_SECRET not in output
    assert "setWebhook" in output and "/bot***/" in output
