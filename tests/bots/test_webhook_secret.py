"""A Telegram webhook's secret is configured, never derived from the bot token (whoever read
the token would forge updates too): without one, a webhook refuses to start, and
`concierge doctor --for telegram` says so."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bots.telegram import telegram_adapter, webhook_secret
from core.infra.settings import Settings
from tests.bots.conftest import Clerk, make_ledger
from tests.bots.test_doctor import GOOD_TELEGRAM, doctor
from tests.processes import clean_env

URL = "https://bot.example.com/telegram"


def test_no_secret_is_derived_from_the_token(tmp_path: Path) -> None:
    settings = Settings(telegram_token=SecretStr(GOOD_TELEGRAM), telegram_webhook_url=URL)
    with pytest.raises(ValueError, match="CONCIERGE_TELEGRAM_WEBHOOK_SECRET is not set"):
        webhook_secret(settings)
    with pytest.raises(ValueError, match="CONCIERGE_TELEGRAM_WEBHOOK_SECRET is not set"):
        telegram_adapter(settings, Clerk(), make_ledger(tmp_path / "ledger.sqlite3"))
    derived = hashlib.sha256(GOOD_TELEGRAM.encode()).hexdigest()[:48]  # what it used to be
    configured = settings.model_copy(update={"telegram_webhook_secret": SecretStr("s3cret_-")})
    assert webhook_secret(configured) == "s3cret_-" != derived


def test_a_secret_telegram_would_reject_is_refused() -> None:
    settings = Settings(telegram_token=SecretStr(GOOD_TELEGRAM), telegram_webhook_url=URL,
                        telegram_webhook_secret=SecretStr("has spaces"))
    with pytest.raises(ValueError, match="A-Z a-z 0-9 _ -"):
        webhook_secret(settings)


def test_polling_needs_no_webhook_secret(tmp_path: Path) -> None:
    settings = Settings(telegram_token=SecretStr(GOOD_TELEGRAM))
    adapter = telegram_adapter(settings, Clerk(), make_ledger(tmp_path / "ledger.sqlite3"))
    assert adapter.application.bot.token == GOOD_TELEGRAM


def test_the_process_refuses_a_webhook_without_a_secret(tmp_path: Path) -> None:
    env = clean_env(sqlite_path=tmp_path / "state.sqlite3", telegram_token=GOOD_TELEGRAM,
                    telegram_webhook_url=URL, telegram_base_url="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "bots.telegram"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "CONCIERGE_TELEGRAM_WEBHOOK_SECRET is not set" in done.stderr
    assert "Traceback" not in done.stderr  # one line, not a crash
    assert GOOD_TELEGRAM not in done.stdout + done.stderr


def test_doctor_reports_a_webhook_without_its_secret(tmp_path: Path) -> None:
    code, out = doctor(tmp_path, "--for", "telegram", telegram_token=GOOD_TELEGRAM,
                       telegram_webhook_url=URL)
    assert code == 1 and "CONCIERGE_TELEGRAM_WEBHOOK_SECRET is not set" in out
    assert "openssl rand -hex 32" in out
    code, out = doctor(tmp_path, "--for", "telegram", telegram_token=GOOD_TELEGRAM,
                       telegram_webhook_url=URL, telegram_webhook_secret="a" * 64)
    assert code == 0 and "CONCIERGE_TELEGRAM_WEBHOOK_SECRET is set and well-formed" in out, out
    assert "a" * 64 not in out
