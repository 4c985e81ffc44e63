"""Tickets in the SQLite state file (tables of their own): the embedded default."""

from __future__ import annotations

import builtins
import sqlite3
from pathlib import Path

from core.handover.tickets.store import (
    ACTIVE,
    CLOSED,
    Change,
    Ticket,
    TicketEntry,
    TicketFacts,
    TicketStatus,
    anonymised,
    fields_json,
)
from core.infra.sqlite_file import AddedColumn, SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, status TEXT NOT NULL,
    agent_thread TEXT, created REAL NOT NULL, fields TEXT NOT NULL,
    customer TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS tickets_conversation ON tickets (conversation_id, status);
CREATE INDEX IF NOT EXISTS tickets_customer ON tickets (customer, created);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, created);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_thread ON tickets (agent_thread);
CREATE TABLE IF NOT EXISTS ticket_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT NOT NULL, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ticket_entries_ticket ON ticket_entries (ticket_id, seq);
"""

# Files made before tickets were found by customer: the customer is read out of the fields.
ADDED = (
    AddedColumn(
        "tickets",
        "customer",
        "TEXT NOT NULL DEFAULT ''",
        "UPDATE tickets SET customer = coalesce(json_extract(fields, '$.customer'), '') "
        "WHERE json_valid(fields)",
    ),
)


class SqliteTicketStore:
    """Tickets in the same SQLite file as conversation state (own tables), WAL mode."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.file = SqliteFile(path, SCHEMA, "ticket store", busy_timeout_s, ADDED)

    def create(self, ticket: Ticket) -> None:
        with self.file.transaction() as db:
            db.execute(
                "INSERT INTO tickets (id, created, conversation_id, status, agent_thread, "
                "customer, fields) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ticket.id, ticket.created_at, *_columns(ticket)),
            )
            db.executemany(
                "INSERT INTO ticket_entries (ticket_id, entry) VALUES (?, ?)",
                [(ticket.id, entry.model_dump_json()) for entry in ticket.transcript],
            )

    def get(self, ticket_id: str) -> Ticket | None:
        return self._first("SELECT fields FROM tickets WHERE id = ?", (ticket_id,))

    def append(self, ticket_id: str, entry: TicketEntry) -> None:
        with self.file.transaction() as db:
            db.execute(
                "INSERT INTO ticket_entries (ticket_id, entry) VALUES (?, ?)",
                (ticket_id, entry.model_dump_json()),
            )

    def update(self, ticket_id: str, change: Change) -> Ticket | None:
        with self.file.transaction() as db:
            row = db.execute("SELECT fields FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            if row is None:
                return None
            current = Ticket.model_validate_json(row[0])
            new = change(current)
            if new is None:
                return None
            new = Ticket.model_validate(new.model_dump() | {"id": current.id, "transcript": ()})
            _rewrite(db, new)
        return self.get(ticket_id)

    def active_for(self, conversation_id: str) -> Ticket | None:
        return self._first(
            "SELECT fields FROM tickets WHERE conversation_id = ? AND status IN (?, ?) "
            "ORDER BY created DESC LIMIT 1",
            (conversation_id, *ACTIVE),
        )

    def by_agent_thread(self, agent_thread: str) -> Ticket | None:
        return self._first("SELECT fields FROM tickets WHERE agent_thread = ?", (agent_thread,))

    def list(
        self, statuses: tuple[TicketStatus, ...] = ACTIVE, limit: int = 100, offset: int = 0
    ) -> list[Ticket]:
        marks = ", ".join("?" for _ in statuses)
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute(
                    f"SELECT fields FROM tickets WHERE status IN ({marks}) "
                    "ORDER BY created LIMIT ? OFFSET ?",
                    (*statuses, limit, offset),
                )
                .fetchall()
            )
        return [self._assemble(row[0]) for row in rows]

    def counts(self) -> dict[TicketStatus, int]:
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute("SELECT status, count(*) FROM tickets GROUP BY status")
                .fetchall()
            )
        found = {status: 0 for status in (*ACTIVE, *CLOSED)}
        return found | {status: int(n) for status, n in rows}

    def facts(self, since: float) -> builtins.list[TicketFacts]:
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute(
                    "SELECT created, status, json_extract(fields, '$.reason'), "
                    "json_extract(fields, '$.rating') FROM tickets WHERE created >= ?",
                    (since,),
                )
                .fetchall()
            )
        return [TicketFacts(created, status, reason or "", rating)
                for created, status, reason, rating in rows]

    def of_customer(self, customer: str) -> builtins.list[Ticket]:
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute(
                    "SELECT fields FROM tickets WHERE customer = ? ORDER BY created", (customer,)
                )
                .fetchall()
            )
        return [self._assemble(row[0]) for row in rows]

    def anonymise(self, ticket_id: str) -> None:
        with self.file.transaction() as db:
            row = db.execute("SELECT fields FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM ticket_entries WHERE ticket_id = ?", (ticket_id,))
            _rewrite(db, anonymised(Ticket.model_validate_json(row[0])))

    def purge(self, closed_before: float) -> int:
        marks = ", ".join("?" for _ in CLOSED)
        old = (
            f"SELECT id FROM tickets WHERE status IN ({marks}) "
            "AND json_extract(fields, '$.closed_at') < ?"
        )
        with self.file.transaction() as db:
            db.execute(
                f"DELETE FROM ticket_entries WHERE ticket_id IN ({old})", (*CLOSED, closed_before)
            )
            cursor = db.execute(
                f"DELETE FROM tickets WHERE id IN ({old})", (*CLOSED, closed_before)
            )
            return cursor.rowcount

    def _first(self, sql: str, args: tuple[object, ...]) -> Ticket | None:
        """The ticket of the first row `sql` selects (its `fields` column), or None."""
        with self.file.guard():
            row = self.file.connection().execute(sql, args).fetchone()
        return None if row is None else self._assemble(row[0])

    def _assemble(self, fields: str) -> Ticket:
        ticket = Ticket.model_validate_json(fields)
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute(
                    "SELECT entry FROM ticket_entries WHERE ticket_id = ? ORDER BY seq",
                    (ticket.id,),
                )
                .fetchall()
            )
        entries = tuple(TicketEntry.model_validate_json(row[0]) for row in rows)
        return ticket.model_copy(update={"transcript": entries})


def _columns(ticket: Ticket) -> tuple[str | None, ...]:
    """The columns that follow a ticket's fields (the indexes read them), in one order."""
    return (
        ticket.conversation_id,
        ticket.status,
        ticket.agent_thread,
        ticket.customer,
        fields_json(ticket),
    )


def _rewrite(db: sqlite3.Connection, ticket: Ticket) -> None:
    """Store a changed ticket's fields and every column read from them."""
    db.execute(
        "UPDATE tickets SET conversation_id = ?, status = ?, agent_thread = ?, customer = ?, "
        "fields = ? WHERE id = ?",
        (*_columns(ticket), ticket.id),
    )
