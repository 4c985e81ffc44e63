"""Conversation state in Redis: for several bot processes on one or more hosts.

The per-conversation lock is a token-owned key with an expiry, renewed by compare-and-pexpire
while held and released by compare-and-delete, so it holds across processes and a crashed holder
frees it. A save on the holding thread is one script that writes only if the lock key still holds
the holder's token (see core/state/lease.py).

Keys: {prefix}:state:{id} (the state JSON, expires when idle), {prefix}:quarantine:{id} (list
of unreadable states), {prefix}:lock:{id}, {prefix}:user-conversations:{user} (set of ids,
expires like the states, for export and deletion) and {prefix}:conversations:saved (sorted set
of ids by last save, for purging).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from pydantic import ValidationError

from core.infra.logs import event
from core.infra.redis_client import DEFAULT_TIMEOUT_S, RedisConnection, texts
from core.state.lease import LOCK_LEASE_S, HeldLocks
from core.state.store import ConversationState, LockLost, acquire

log = logging.getLogger(__name__)

STATE_TTL_S = 90 * 24 * 3600  # idle conversations are forgotten after 90 days
PURGE_BATCH = 500  # conversations deleted per transaction by `purge`

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# The fenced save: what `save` writes in its transaction, only while KEYS[1] (the lock) still
# holds ARGV[1] (the token). KEYS: lock, state, the user's set, the saved index. ARGV: token,
# state JSON, TTL seconds, conversation id, save time.
_FENCED_SAVE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('sadd', KEYS[3], ARGV[4])
redis.call('expire', KEYS[3], ARGV[3])
redis.call('zadd', KEYS[4], ARGV[5], ARGV[4])
return 1
"""


class RedisStateStore:
    def __init__(
        self,
        url: str,
        prefix: str = "concierge",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        lease_s: float = LOCK_LEASE_S,
    ) -> None:
        """`clock` stamps saves (what `purge` compares); expiry and locks use Redis's time."""
        self.redis = RedisConnection(url, prefix, timeout_s)
        self.clock = clock
        self.saved = self.redis.key("conversations", "saved")
        self._release = self.redis.client.register_script(_RELEASE)
        self._renew = self.redis.client.register_script(_RENEW)
        self._fenced_save = self.redis.client.register_script(_FENCED_SAVE)
        self.held = HeldLocks(lease_s, self._renew_lease)

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
        """The state and both indexes in one transaction, so no saved state is missing from
        them. The user's set expires with the user's latest state. Fenced by the lock this
        thread holds on the conversation, if any."""
        conversation_id, of_user = state.conversation_id, self.user_key(state.user_id)
        token = self.held.token(conversation_id)
        if token is not None:
            self._save_fenced(state, token)
            return
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.set(
                self.redis.key("state", conversation_id), state.model_dump_json(), ex=STATE_TTL_S
            )
            pipe.sadd(of_user, conversation_id)
            pipe.expire(of_user, STATE_TTL_S)
            pipe.zadd(self.saved, {conversation_id: self.clock()})
            pipe.execute()

    def _save_fenced(self, state: ConversationState, token: str) -> None:
        """The same writes as `save`, in one script that first checks the lock's token."""
        conversation_id = state.conversation_id
        keys = [
            self.redis.key("lock", conversation_id),
            self.redis.key("state", conversation_id),
            self.user_key(state.user_id),
            self.saved,
        ]
        args: list[str | int] = [
            token, state.model_dump_json(), STATE_TTL_S, conversation_id, repr(self.clock())
        ]
        with self.redis.guard():
            written = self._fenced_save(keys=keys, args=args)
        if not written:
            raise LockLost(f"conversation {conversation_id}: its lock was lost before the save")

    def conversations_of(self, user_id: str) -> list[str]:
        """Leaves out ids whose state has expired: the set lives as long as the user's latest
        state, so it may still name older ones."""
        with self.redis.guard():
            ids = sorted(texts(self.redis.client.smembers(self.user_key(user_id))))
            pipe = self.redis.client.pipeline(transaction=False)
            for conversation_id in ids:
                pipe.exists(self.redis.key("state", conversation_id))
            found = pipe.execute()
        return [conversation_id for conversation_id, n in zip(ids, found, strict=True) if n]

    def delete(self, conversation_id: str) -> None:
        state_key = self.redis.key("state", conversation_id)
        with self.redis.guard():
            user_id = _user_of(self.redis.client.get(state_key))
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.delete(state_key, self.redis.key("quarantine", conversation_id))
            pipe.zrem(self.saved, conversation_id)
            if user_id is not None:
                pipe.srem(self.user_key(user_id), conversation_id)
            pipe.execute()

    def purge(self, idle_before: float) -> int:
        """Counts the conversations whose state was still there (not expired, not
        quarantined); every id scored before `idle_before` leaves the index."""
        purged = 0
        while True:
            with self.redis.guard():
                batch = texts(
                    self.redis.client.zrangebyscore(
                        self.saved, "-inf", f"({idle_before}", start=0, num=PURGE_BATCH
                    )
                )
            if not batch:
                return purged
            purged += self._purge_batch(batch, idle_before)

    def _purge_batch(self, ids: list[str], idle_before: float) -> int:
        """Delete those of `ids` still idle. WATCH on their states: a save landing meanwhile
        makes the batch start over, so a conversation that just came back is never lost."""
        state_keys = [self.redis.key("state", conversation_id) for conversation_id in ids]
        with self.redis.guard(), self.redis.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*state_keys)
                    scores = pipe.zmscore(self.saved, ids)
                    states = pipe.mget(state_keys)
                    idle = [
                        (conversation_id, raw)
                        for conversation_id, score, raw in zip(ids, scores, states, strict=True)
                        if score is not None and score < idle_before
                    ]
                    pipe.multi()
                    for conversation_id, raw in idle:
                        pipe.delete(
                            self.redis.key("state", conversation_id),
                            self.redis.key("quarantine", conversation_id),
                        )
                        user_id = _user_of(raw)
                        if user_id is not None:
                            pipe.srem(self.user_key(user_id), conversation_id)
                    if idle:
                        pipe.zrem(self.saved, *(conversation_id for conversation_id, _ in idle))
                    pipe.execute()
                    return sum(1 for _, raw in idle if raw is not None)
                except redis.WatchError:
                    continue

    def user_key(self, user_id: str) -> str:
        """The set of a platform user's conversation ids."""
        return self.redis.key("user-conversations", user_id)

    @contextmanager
    def lock(self, conversation_id: str, timeout: float = 30.0) -> Iterator[None]:
        key, token = self.redis.key("lock", conversation_id), uuid.uuid4().hex
        lease_ms = round(self.held.lease_s * 1000)
        with self.redis.guard():
            acquire(
                lambda: bool(self.redis.client.set(key, token, nx=True, px=lease_ms)),
                conversation_id,
                timeout,
            )
        try:
            with self.held.holding(conversation_id, token):
                yield
        finally:
            with self.redis.guard():
                self._release(keys=[key], args=[token])

    def _renew_lease(self, conversation_id: str, token: str, lease_s: float) -> bool:
        with self.redis.guard():
            renewed = self._renew(
                keys=[self.redis.key("lock", conversation_id)], args=[token, round(lease_s * 1000)]
            )
        return bool(renewed)


def _user_of(raw: bytes | str | None) -> str | None:
    """The user id in a saved state's JSON, read leniently: an unreadable state still names
    its user, so its index entry can go with it."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    user_id = value.get("user_id", "") if isinstance(value, dict) else None
    return user_id if isinstance(user_id, str) else None
