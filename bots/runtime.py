"""Wiring: build the conversation core from settings. Every adapter's main() calls this.

Implementations are imported only when configured, so a bot process that scores through
Celery workers never imports torch.
"""

from __future__ import annotations

from core import logs
from core.conversation import Conversation, Services
from core.demo_store import load_store
from core.policy import PolicyConfig
from core.recommendation import Recommender
from core.settings import Settings
from core.state import StateStore
from core.understanding import Understander


def configure_logging(settings: Settings, default_level: str | None = None) -> None:
    """Adapters log at the configured level; the terminal chat stays quiet unless asked."""
    fields_set = settings.model_fields_set
    level = (
        settings.log_level if default_level is None or "log_level" in fields_set else default_level
    )
    logs.configure(level, settings.log_format)


def build_store(settings: Settings) -> StateStore:
    if settings.state_backend == "redis":
        from core.redis_store import RedisStateStore

        return RedisStateStore(settings.redis_url, settings.redis_prefix)
    from core.sqlite_store import SqliteStateStore

    return SqliteStateStore(settings.sqlite_path)


def build_understander(settings: Settings) -> Understander:
    raise NotImplementedError(f"understander {settings.understander!r} is not wired yet")


def build_recommender(settings: Settings) -> Recommender:
    raise NotImplementedError(f"recommender {settings.recommender!r} is not wired yet")


def build_conversation(settings: Settings) -> Conversation:
    store = load_store(settings.demo_dir)
    services = Services(
        store=build_store(settings),
        understander=build_understander(settings),
        recommender=build_recommender(settings),
        catalog=store.catalog,
        orders=store.orders,
        knowledge=store.knowledge,
    )
    return Conversation(services, PolicyConfig(), lock_timeout_s=settings.lock_timeout_s)
