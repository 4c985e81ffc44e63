"""The ledger the settings name: Redis if the conversation state is there, else a SQLite file."""

from __future__ import annotations

from bots.ledger.store import Ledger
from core.infra.settings import Settings


def open_ledger(settings: Settings) -> Ledger:
    if settings.state_backend == "redis":
        from bots.ledger.redis import RedisLedger

        return RedisLedger(settings.redis_url, settings.redis_prefix, settings.adapter_ledger_ttl_s)
    from bots.ledger.sqlite import SqliteLedger

    # A file of its own next to the state, so the state store's schema stays its own business.
    return SqliteLedger(
        settings.sqlite_path.with_name("adapters.sqlite3"), settings.adapter_ledger_ttl_s
    )
