"""The delivery queue the settings name: beside the conversation state (SQLite file or Redis)."""

from __future__ import annotations

from core.handover.deliveries.store import DeliveryQueue
from core.infra.settings import Settings


def open_delivery_queue(settings: Settings) -> DeliveryQueue:
    if settings.state_backend == "redis":
        from core.handover.deliveries.redis import RedisDeliveryQueue

        return RedisDeliveryQueue(
            settings.redis_url, settings.redis_prefix, lease_s=settings.delivery_lease_s
        )
    from core.handover.deliveries.sqlite import SqliteDeliveryQueue

    return SqliteDeliveryQueue(
        settings.sqlite_path, lease_s=settings.delivery_lease_s, poll_s=settings.delivery_poll_s
    )
