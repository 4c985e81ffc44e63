"""Retention as a periodic job: conversations idle past the setting and tickets closed long
ago are deleted by the job every serving process runs, on the SQLite state file."""

from __future__ import annotations

import time
from pathlib import Path

from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import Ticket
from core.identity.rights import DAY_S, DataRights, Retention, RetentionJob
from core.shopdb.database import ShopDatabase
from core.shopdb.identity import SqlIdentities
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from tests.bots.peers import wait_until


def test_the_retention_job_purges_old_transcripts_and_closed_tickets(
    tmp_path: Path, demo_store: str
) -> None:
    now = time.time()
    clock = {"now": now - 100 * DAY_S}
    states = SqliteStateStore(tmp_path / "state.sqlite3", clock=lambda: clock["now"])
    tickets = SqliteTicketStore(tmp_path / "state.sqlite3")
    states.save(ConversationState(conversation_id="old", user_id="telegram:1"))
    clock["now"] = now
    states.save(ConversationState(conversation_id="new", user_id="telegram:1"))
    for name, closed in (("T-old", now - 400 * DAY_S), ("T-new", now - DAY_S)):
        tickets.create(Ticket(id=name, conversation_id=name, customer="telegram:1",
                              platform="telegram", reason="asked for a person",
                              status="resolved", created_at=closed, updated_at=closed,
                              closed_at=closed))
    database = ShopDatabase(demo_store)
    rights = DataRights(states, SqlIdentities(database), tickets, Retention(90, 365))
    job = RetentionJob(rights.purge, every_s=0.05).start()
    try:
        wait_until(lambda: states.conversations_of("telegram:1") == ["new"], timeout=10)
        wait_until(lambda: tickets.get("T-old") is None, timeout=10)
    finally:
        job.stop()
    assert tickets.get("T-new") is not None
    database.close()
