"""The conversation state store the settings name: a SQLite file, or Redis."""

from __future__ import annotations

from core.infra.settings import Settings
from core.state.store import StateStore


def open_state_store(settings: Settings) -> StateStore:
    if settings.state_backend == "redis":
        from core.state.redis import RedisStateStore

        return RedisStateStore(settings.redis_url, settings.redis_prefix)
    from core.state.sqlite import SqliteStateStore

    return SqliteStateStore(settings.sqlite_path)
