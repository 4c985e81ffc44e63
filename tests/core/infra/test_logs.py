"""core.infra.logs: no secret in any line the configured handler writes, at any level, from
any logger (ours and libraries'), in messages, arguments, fields and tracebacks."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from core.infra import logs
from core.infra.logs import configure, event
from core.infra.settings import Settings, secrets_of

TOKEN = "4242:unit-test-bot-token"  # not a real token's shape: only the settings know it
SHAPED_TOKEN = "7012345678:AAF" + "x" * 32  # a Bot API token's shape, in no setting
REDIS_PASSWORD = "redis-pw-unit"
STORE_PASSWORD = "store/pw unit"  # percent-encoded in its URL
SIGNING = "signing-secret-unit"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        telegram_token=SecretStr(TOKEN),
        slack_signing_secret=SecretStr(SIGNING),
        llm_api_key=SecretStr("llm-key-unit"),
        redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
        store_url=SecretStr("postgresql://shop:store%2Fpw%20unit@db:5432/shop"),
    )


class Written(io.StringIO):
    """What the handler `configure` installs writes (instead of stderr)."""

    def configure(self, level: str, fmt: str = "text") -> None:
        configure(level, fmt)
        [handler] = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(self)


@pytest.fixture
def stderr() -> Iterator[Written]:
    """The logging set-up is restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook,
             {name: logging.getLogger(name).level for name in ("alembic", "httpx")})
    yield Written()
    root.handlers[:], root.level, sys.excepthook, threading.excepthook, levels = saved
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_settings_secrets_are_known_and_plain_paths_are_not(settings: Settings) -> None:
    found = secrets_of(settings)
    assert {TOKEN, SIGNING, "llm-key-unit", REDIS_PASSWORD, STORE_PASSWORD} <= found
    assert "store%2Fpw%20unit" in found  # as it is written in the URL, too
    assert not any("sqlite:///" in value for value in secrets_of(Settings()))


def test_every_level_and_every_part_of_a_record_is_scrubbed(
    settings: Settings, stderr: Written
) -> None:
    stderr.configure("DEBUG")
    library = logging.getLogger("httpx")
    library.debug("HTTP Request: POST http://127.0.0.1/bot%s/getUpdates", TOKEN)
    logging.getLogger("redis.connection").info("connecting to %s", settings.redis_url)
    event(logging.getLogger("concierge.test"), "store.opened", level=logging.WARNING,
          url=settings.store_url.get_secret_value().replace("%2F", "/").replace("%20", " "),
          header=f"Bearer {SIGNING}", nested={"key": "llm-key-unit"}, token="anything")
    try:
        raise RuntimeError(f"the token `{TOKEN}` was rejected by the server")
    except RuntimeError:
        logging.getLogger("telegram.ext").exception("update failed")
    written = stderr.getvalue()
    for secret in (TOKEN, REDIS_PASSWORD, STORE_PASSWORD, SIGNING, "llm-key-unit", "anything"):
        assert secret not in written, secret
    assert "/bot***/getUpdates" in written and "redis://:***@127.0.0.1" in written
    assert "the token `***` was rejected" in written and "Traceback" in written


def test_credentials_are_recognised_by_shape_without_settings(stderr: Written) -> None:
    stderr.configure("DEBUG")
    log = logging.getLogger("slack_sdk.web")
    log.debug("GET https://api.telegram.org/bot%s/getMe", SHAPED_TOKEN)
    log.debug("headers: {'Authorization': 'Bearer xoxb-1234-5678-abcdefgh'}")
    log.debug("socket mode with xapp-1-A0123-456-abcdef and key sk-proj-abcdefghijklmnop1234")
    log.debug("broker redis://celery:hunter2hunter@broker:6379/1")
    written = stderr.getvalue()
    for secret in (SHAPED_TOKEN, "abcdefgh", "A0123-456-abcdef", "abcdefghijklmnop1234",
                   "hunter2hunter"):
        assert secret not in written, secret
    assert "bot***/getMe" in written and "redis://celery:***@broker" in written


def test_json_lines_stay_valid_and_scrubbed(settings: Settings, stderr: Written) -> None:
    stderr.configure("DEBUG", "json")
    try:
        raise ConnectionError(f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379 refused")
    except ConnectionError:
        event(logging.getLogger("concierge.test"), "state.down", level=logging.ERROR,
              reason=f"auth {TOKEN}")
        logging.getLogger("kombu").exception("broker %s down", settings.redis_url)
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "state.down", "broker redis://:***@127.0.0.1:6379/0 down"]
    assert lines[0]["reason"] == "auth ***"
    assert "Traceback" in lines[1]["exc"] and REDIS_PASSWORD not in lines[1]["exc"]


def test_uncaught_exceptions_are_logged_scrubbed(settings: Settings, stderr: Written) -> None:
    stderr.configure("INFO")
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    thread = threading.Thread(target=lambda: (_ for _ in ()).throw(OSError(f"pw {SIGNING}")))
    thread.start()
    thread.join()
    written = stderr.getvalue()
    assert TOKEN not in written and SIGNING not in written
    assert "process.uncaught" in written and "thread.uncaught" in written


def test_httpx_request_lines_are_quiet_unless_debug(stderr: Written) -> None:
    stderr.configure("INFO")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/bot1/getMe")
    assert stderr.getvalue() == ""
    stderr.configure("DEBUG")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/bot1/getMe")
    assert "HTTP Request" in stderr.getvalue()


def test_short_values_are_not_scrubbed_everywhere() -> None:
    logs.keep_secrets(["ab"])
    assert logs.scrub("about a cab") == "about a cab"
