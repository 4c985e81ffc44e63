"""The ticket store the settings name: beside the conversation state (SQLite file or Redis)."""

from __future__ import annotations

from core.handover.tickets.store import TicketStore
from core.infra.settings import Settings


def open_ticket_store(settings: Settings) -> TicketStore:
    if settings.state_backend == "redis":
        from core.handover.tickets.redis import RedisTicketStore

        return RedisTicketStore(settings.redis_url, settings.redis_prefix)
    from core.handover.tickets.sqlite import SqliteTicketStore

    return SqliteTicketStore(settings.sqlite_path)
