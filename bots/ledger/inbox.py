"""Customers' messages kept until they are answered: the adapters' inbox.

A chat platform delivers a message once (Telegram forgets an update once it is fetched; Slack is
acknowledged at once), so an adapter writes each message here before it acknowledges it, and
settles it only after the turn's replies were sent. A process that dies in between (killed,
out of memory, a failed send) leaves the message unsettled; once its lease runs out, any bot
process of the same platform sharing the store takes it (`take_stale`, an atomic claim: one
process each) and runs it again. The core answers a message it already saved with the replies
it kept (`ConversationState.answered`), so the customer is answered exactly once either way.

Holding a message's delivery key is also the dedup: a platform's retry of a message in progress
or settled is refused by `accept`. Keys are stored as digests (`stored_key`); the message itself
(its `Incoming`, with the text) is kept only until it is settled, and every entry expires after
a day.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Protocol

from bots.ledger.store import DELIVERY_TTL_S, stored_key
from core.turn.messages import Incoming

INBOX_TTL_S = DELIVERY_TTL_S  # entries, settled or not, are forgotten after a day


@dataclass(frozen=True)
class Pending:
    """A message in the inbox: its delivery key's digest, the message, and the platform's
    detail its replies need (Telegram: the message they answer)."""

    ref: str
    incoming: Incoming
    anchor: str | None = None
    attempts: int = 0  # times a process took it over after another left it

    @classmethod
    def of(cls, key: str, incoming: Incoming, anchor: str | None = None) -> Pending:
        return cls(stored_key(key), incoming, anchor)

    def body(self) -> str:
        return json.dumps({"incoming": asdict(self.incoming), "anchor": self.anchor})

    @classmethod
    def from_body(cls, ref: str, body: str, attempts: int) -> Pending:
        data = json.loads(body)
        return cls(ref, Incoming(**data["incoming"]), data["anchor"], attempts)


class Inbox(Protocol):
    def accept(self, pending: Pending, lease_s: float) -> bool:
        """Keep `pending`, leased to this process for `lease_s`; False when its key is already
        here (a repeated delivery of a message in progress or settled)."""
        ...

    def renew(self, ref: str, lease_s: float) -> None:
        """This process is still working on it: nobody takes it over for `lease_s` more."""
        ...

    def release(self, ref: str) -> None:
        """This process gives it up unanswered (shutting down): any process may take it now."""
        ...

    def settle(self, ref: str) -> None:
        """Answered: the message is dropped; its key's digest stays, to refuse repeats."""
        ...

    def take_stale(self, platform: str, lease_s: float, limit: int = 20) -> list[Pending]:
        """Unsettled messages of `platform` whose lease ran out, now leased to the caller for
        `lease_s` (each to one caller only), attempts counted."""
        ...
