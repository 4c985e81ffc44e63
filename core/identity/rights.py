"""Customers' data rights: what is held about a person, deleting it, and retention.

A person is a platform user id; their linked store customer's feedback events go with them.
The shop's own records (the customer, their orders) are the shop's to keep and are not touched.
Deleting keeps only anonymised counts (how many people, conversations, tickets and feedback
events were deleted), so the shop's figures stay true.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.handover.tickets.store import TicketStore
from core.identity.store import IdentityStore
from core.infra.logs import event
from core.state.store import StateStore

log = logging.getLogger(__name__)

# Interaction kinds the chat records from buttons (see core.turn.conversation._feedback).
FEEDBACK_KINDS = ("more_like_this", "not_for_me", "details")
DAY_S = 24 * 3600


@dataclass(frozen=True)
class Retention:
    transcript_days: int = 90  # conversations idle this long are deleted (0: kept)
    ticket_days: int = 365  # resolved tickets closed this long ago are deleted (0: kept)


class DataRights:
    def __init__(
        self,
        states: StateStore,
        identities: IdentityStore,
        tickets: TicketStore | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.states = states
        self.identities = identities
        self.tickets = tickets
        self.retention = retention or Retention()

    def _ids(self, user_id: str) -> list[str]:
        """The user and the customer they are linked to."""
        link = self.identities.link_of(user_id)
        return [user_id, *([link.customer_id] if link else [])]

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything held about this platform user, as JSON-ready data."""
        conversations = [
            self.states.load(conversation).model_dump(mode="json")
            for conversation in self.states.conversations_of(user_id)
        ]
        tickets = (
            [t.model_dump(mode="json") for t in self.tickets.of_customer(user_id)]
            if self.tickets is not None
            else []
        )
        held = self.identities.held(self._ids(user_id), FEEDBACK_KINDS)
        return {
            "user_id": user_id,
            "exported_at": datetime.now(UTC).isoformat(),
            **held,
            "conversations": conversations,
            "tickets": tickets,
        }

    def delete(self, user_id: str) -> dict[str, int]:
        """Delete what is held about this platform user; the counts of what was deleted."""
        conversations = self.states.conversations_of(user_id)
        for conversation in conversations:
            self.states.delete(conversation)
        tickets = self.tickets.of_customer(user_id) if self.tickets is not None else []
        for ticket in tickets:
            assert self.tickets is not None
            self.tickets.anonymise(ticket.id)
        counts = {
            "people": 1,
            "conversations": len(conversations),
            "tickets": len(tickets),
            **self.identities.forget(self._ids(user_id), FEEDBACK_KINDS),
        }
        self.identities.add_counts(counts)
        event(log, "privacy.deleted", **counts)  # counts only: the person is gone
        return counts

    def delete_person(self, person: str) -> dict[str, int]:
        """`delete` for a platform user, or for a store customer: each platform user linked
        to them, then what is held under the customer id itself (terminal chats, feedback)."""
        totals: dict[str, int] = {}
        linked = [link.user_id for link in self.identities.links_of_customer(person)]
        for user in [*linked, person]:
            for name, value in self.delete(user).items():
                totals[name] = totals.get(name, 0) + value
        totals["people"] = 1
        return totals

    def purge(self, now: float | None = None) -> dict[str, int]:
        """Retention: delete idle conversations and old closed tickets, expired proofs."""
        now = time.time() if now is None else now
        purged = {"conversations": 0, "tickets": 0}
        if self.retention.transcript_days > 0:
            purged["conversations"] = self.states.purge(
                now - self.retention.transcript_days * DAY_S
            )
        if self.retention.ticket_days > 0 and self.tickets is not None:
            purged["tickets"] = self.tickets.purge(now - self.retention.ticket_days * DAY_S)
        purged["proofs"] = self.identities.purge(datetime.fromtimestamp(now, UTC))
        event(log, "privacy.purged", **purged)
        return purged


class RetentionJob:
    """Runs `DataRights.purge` every `every_s` seconds on a daemon thread (in every process
    serving customers: purges are idempotent, so several processes may run it)."""

    def __init__(
        self, purge: Callable[[], object], every_s: float, name: str = "retention"
    ) -> None:
        self._purge = purge
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> RetentionJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            try:
                self._purge()
            except Exception:  # a store away for a while: try again next round
                log.exception("privacy.purge_failed")
            if self._stop.wait(self._every_s):
                return
