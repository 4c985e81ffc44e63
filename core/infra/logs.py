"""Structured logging: dotted event names plus key=value fields, one summary line per turn.

No secret reaches a log line, whoever logs it: the handler `configure` installs scrubs every
record (message, arguments, fields, traceback) at every level, libraries' records included:
httpx logs python-telegram-bot's `/bot<TOKEN>/` URLs, connection errors carry `redis://:pw@`.
It removes the values every `Settings` built in this process registered (`keep_secrets`), and
what has the shape of a credential whatever its value (bot tokens, bearer headers, Slack and
OpenAI keys, URL passwords). Uncaught exceptions are logged through it too: their messages can
carry a token (python-telegram-bot's InvalidToken quotes it).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

REDACTED = "***"
# Field names whose values are never written to logs.
SECRET_FIELDS = frozenset({"token", "api_key", "secret", "password", "signing_secret"})
# Shorter values are not scrubbed: replacing every "ab" would ruin the logs and hide nothing.
MIN_SECRET_CHARS = 4

# Credentials recognised by their shape, whatever the settings say.
CREDENTIAL_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram bot tokens (`<bot id>:<secret>`), as in the Bot API's /bot<TOKEN>/ URLs.
    (re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"), REDACTED),
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\1 {REDACTED}"),
    # Slack tokens: bot, user, app-level, configuration and refresh tokens.
    (re.compile(r"\b(xox(?:e\.xox)?[abeoprs]|xapp)-[A-Za-z0-9-]+"), rf"\1-{REDACTED}"),
    # OpenAI-style API keys.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), f"sk-{REDACTED}"),
    # The password in a URL's user info: redis://:pw@host, postgresql://user:pw@host.
    (re.compile(r"(://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
)

_known: frozenset[str] = frozenset()  # registered secret values
_known_pattern: re.Pattern[str] | None = None
_known_lock = threading.Lock()


def keep_secrets(values: Iterable[str]) -> None:
    """Scrub `values` from every log line from now on (Settings registers its secrets here)."""
    global _known, _known_pattern
    fresh = {value for value in values if len(value) >= MIN_SECRET_CHARS}
    with _known_lock:
        if fresh <= _known:
            return
        _known = _known | fresh
        # Longest first, so a secret containing another is removed whole.
        alternatives = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(value) for value in alternatives))


def scrub(text: str) -> str:
    """`text` with every known secret and every credential-shaped string replaced by ***."""
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for shape, replacement in CREDENTIAL_SHAPES:
        text = shape.sub(replacement, text)
    return text


def _scrub_field(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS:
        return REDACTED
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    scrubbed = scrub(text)
    return value if scrubbed == text else scrubbed


class Redactor(logging.Filter):
    """Rewrites each record the handler writes so that it carries no secret: the message with
    its arguments merged in, the structured fields, the traceback and the stack."""

    def __init__(self) -> None:
        super().__init__()
        self._tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string still gets a (scrubbed) line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = scrub(message), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {name: _scrub_field(name, value) for name, value in fields.items()}
        if record.exc_info:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
            record.exc_info = None  # no handler may render the unscrubbed traceback again
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        fields = {k: (REDACTED if k in SECRET_FIELDS else v) for k, v in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if self.as_json:
            body = {"ts": round(record.created, 3), "level": record.levelname.lower()}
            body |= {"event": record.getMessage(), **fields}
            if record.exc_text:
                body["exc"] = record.exc_text
            return json.dumps(body, default=str, ensure_ascii=False)
        pairs = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        line = f"{record.levelname.lower():7} {record.getMessage()} {pairs}".rstrip()
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def _plain(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


_uncaught_log = logging.getLogger("concierge.uncaught")


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    _uncaught_log.critical("process.uncaught", exc_info=(kind, error, trace),
                           extra={"fields": {"error": kind.__name__}})


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    fields = {"thread": getattr(args.thread, "name", None), "error": args.exc_type.__name__}
    _uncaught_log.critical("thread.uncaught", extra={"fields": fields},
                           exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send logs to stderr (stdout belongs to the chat in the terminal adapter), scrubbed of
    secrets; uncaught exceptions go the same way instead of Python's raw traceback."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    handler.addFilter(Redactor())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates its plugins and every migration step at INFO: its warnings are enough.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request (with its URL) at INFO: noise, unless DEBUG asks for everything.
    # The Redactor, not this level, is what keeps the token in those URLs out.
    logging.getLogger("httpx").setLevel(
        logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    )
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event: `event(log, "turn.done", intent="recommend", ms=12.5)`."""
    logger.log(level, name, extra={"fields": fields})
