"""Conversation state in Redis: for several bot processes on one or more hosts.

The per-conversation lock is a token-owned key with an expiry, released by compare-and-delete,
so it holds across processes and a crashed holder frees it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from core.infra.logs import event
from core.infra.redis_client import DEFAULT_TIMEOUT_S, RedisConnection
from core.state.store import ConversationState, acquire

log = logging.getLogger(__name__)

LEASE_MS = 60_000
STATE_TTL_S = 90 * 24 * 3600  # idle conversations are forgotten after 90 days

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisStateStore:
    def __init__(
        self, url: str, prefix: str = "concierge", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.redis = RedisConnection(url, prefix, timeout_s)
        self._release = self.redis.client.register_script(_RELEASE)

    def load(self, conversation_id: str) -> ConversationState:
        with self.redis.guard():
            raw = self.redis.client.get(self.redis.key("state", conversation_id))
        if raw is None:
            return ConversationState(conversation_id=conversation_id)
        try:
            return ConversationState.model_validate_json(raw)
        except ValidationError as exc:
            with self.redis.guard():
                self.redis.client.rpush(self.redis.key("quarantine", conversation_id), raw)
                self.redis.client.delete(self.redis.key("state", conversation_id))
            event(
                log,
                "store.state_quarantined",
                logging.WARNING,
                conversation=conversation_id,
                error=str(exc)[:200],
            )
            return ConversationState(conversation_id=conversation_id)

    def save(self, state: ConversationState) -> None:
        with self.redis.guard():
            self.redis.client.set(
                self.redis.key("state", state.conversation_id),
                state.model_dump_json(),
                ex=STATE_TTL_S,
            )

    @contextmanager
    def lock(self, conversation_id: str, timeout: float = 30.0) -> Iterator[None]:
        key, token = self.redis.key("lock", conversation_id), uuid.uuid4().hex
        with self.redis.guard():
            acquire(
                lambda: bool(self.redis.client.set(key, token, nx=True, px=LEASE_MS)),
                conversation_id,
                timeout,
            )
        try:
            yield
        finally:
            with self.redis.guard():
                self._release(keys=[key], args=[token])
