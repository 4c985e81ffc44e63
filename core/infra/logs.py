"""Structured logging: dotted event names plus key=value fields, one summary line per turn."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

# Field names whose values are never written to logs.
SECRET_FIELDS = frozenset({"token", "api_key", "secret", "password", "signing_secret"})


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        fields = {k: ("***" if k in SECRET_FIELDS else v) for k, v in fields.items()}
        if self.as_json:
            body = {"ts": round(record.created, 3), "level": record.levelname.lower()}
            body |= {"event": record.getMessage(), **fields}
            if record.exc_info:
                body["exc"] = self.formatException(record.exc_info)
            return json.dumps(body, default=str, ensure_ascii=False)
        pairs = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        line = f"{record.levelname.lower():7} {record.getMessage()} {pairs}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _plain(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send logs to stderr (stdout belongs to the chat in the terminal adapter)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates its plugins and every migration step at INFO: its warnings are enough.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event: `event(log, "turn.done", intent="recommend", ms=12.5)`."""
    logger.log(level, name, extra={"fields": fields})
