"""Fixtures for the adapter tests: a small deterministic core and the adapters' ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.ledger.sqlite import SqliteLedger
from core.turn.messages import Button, Incoming, Outbox, Reply

LONG_PAYLOAD = "details:" + "P" * 80  # longer than Telegram's 64-byte callback data
BUTTONS = (
    Button("More like this", "more:P0123:1"),
    Button("Not for me", "skip:P0123:1"),
    Button("Full details", LONG_PAYLOAD),
)
PARAGRAPH = "Paragraph {n}: " + "waterproof jacket with taped seams, " * 20
LONG_TEXT = "\n\n".join(PARAGRAPH.format(n=n) for n in range(20))  # about 15,000 characters
PRIVATE_TEXT = "Order #48213 for Dana Reyes has shipped to 12 Elm Street."


class Clerk:
    """Stands in for `Conversation.handle` while testing adapters: deterministic replies.

    "long" -> a 15,000-character reply; "slow" -> a turn that takes 0.6 s; "fail" -> raises;
    "private" -> a personal reply (PRIVATE_TEXT, `private=True`); a button -> "You chose
    <payload>"; anything else -> "You said: <text>" with three buttons.
    """

    def __init__(self) -> None:
        self.seen: list[Incoming] = []
        self._lock = threading.Lock()

    def __call__(self, incoming: Incoming, outbox: Outbox) -> None:
        with self._lock:
            self.seen.append(incoming)
        if incoming.button is not None:
            outbox.send(Reply(f"You chose {incoming.button}"))
            return
        if incoming.text == "fail":
            raise RuntimeError("the core failed")
        if incoming.text == "slow":
            time.sleep(0.6)
        if incoming.text == "private":
            outbox.send(Reply(PRIVATE_TEXT, private=True))
            return
        if incoming.text == "long":
            outbox.send(Reply(LONG_TEXT, buttons=BUTTONS))
            return
        outbox.send(Reply(f"You said: {incoming.text}", buttons=BUTTONS))

    def texts(self, conversation_id: str) -> list[str]:
        with self._lock:
            return [i.text for i in self.seen if i.conversation_id == conversation_id]


@pytest.fixture
def ledger_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "ledger.sqlite3"


def make_ledger(path: Path) -> SqliteLedger:
    return SqliteLedger(path, ttl_s=3600)
