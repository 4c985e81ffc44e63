"""Per-sender inbound rate limit: a flood from one person is refused before it costs anything.

One sender writing hundreds of messages a second would otherwise hold the adapters' slots on
their own conversation's lock, cost an understanding (a model or an LLM call) per message, spend
the bot-wide send budget and, while a person has taken over, flood the agents' thread. So
`Conversation.handle` asks a `RateLimiter` first, before the lock, and a refused message costs
one dict lookup here or one Redis round trip (`core.infra.ratelimit_redis`, shared by every bot
process).

The limit is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): a
sender may send `burst` messages at once, then `per_second` on average; a button press costs
`button_cost` of a message. A refused message starts a *limited stretch* that lasts until the
sender's whole burst is back (they slowed down long enough); only its first refusal is answered
(`Admission.notify`), so the notices of a flood do not spend the send budget either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.infra.settings import Settings

SWEEP_EVERY = 4096  # admissions between sweeps of the in-process table (drops full buckets)


@dataclass(frozen=True)
class RateRule:
    """How fast one sender may write: `burst` messages at once, `per_second` sustained."""

    burst: int = 8
    per_second: float = 1.0
    button_cost: float = 0.5  # a button press, in messages: cheaper (no understanding)

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_second <= 0:
            raise ValueError("a rate rule needs burst >= 1 and per_second > 0")
        if not 0 < self.button_cost <= self.burst:
            raise ValueError("button_cost must be above 0 and at most the burst")

    @property
    def interval_s(self) -> float:
        """Seconds one message's allowance takes to come back."""
        return 1.0 / self.per_second

    def cost(self, button: bool) -> float:
        return self.button_cost if button else 1.0


@dataclass(frozen=True)
class Admission:
    """Whether a message may be handled, and whether the refusal should be answered."""

    allowed: bool
    notify: bool = False  # the first refusal of a limited stretch: tell the sender, once


ADMITTED = Admission(allowed=True)
RATE_LIMITED = "rate_limited"  # the decision a refused turn reports (logs, metrics, last_turn)


class RateLimiter(Protocol):
    def admit(self, sender: str, button: bool = False) -> Admission:
        """Count one message (or button press) from `sender` and say whether it may pass."""
        ...


@dataclass
class _Bucket:
    tat: float  # theoretical arrival time: when the sender's allowance is whole again
    noticed: bool  # the current limited stretch has been answered


class LocalRateLimiter:
    """The limit inside one process (the terminal, one bot process, tests): a dict of buckets
    behind a lock. Several processes each holding one would each allow the full rate."""

    def __init__(self, rule: RateRule, clock: Callable[[], float] = time.monotonic) -> None:
        self.rule = rule
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def admit(self, sender: str, button: bool = False) -> Admission:
        rule = self.rule
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(sender)
            if bucket is None or bucket.tat <= now:  # allowance whole again: any stretch is over
                bucket = _Bucket(tat=now, noticed=False)
            self._sweep(now)
            new_tat = bucket.tat + rule.cost(button) * rule.interval_s
            if new_tat - now <= rule.burst * rule.interval_s:
                self._buckets[sender] = _Bucket(new_tat, bucket.noticed)
                return ADMITTED
            self._buckets[sender] = _Bucket(bucket.tat, noticed=True)
            return Admission(allowed=False, notify=not bucket.noticed)

    def _sweep(self, now: float) -> None:
        """Forget senders whose allowance is whole (they would start afresh anyway), so the
        table holds only recent senders."""
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        for sender in [s for s, b in self._buckets.items() if b.tat <= now]:
            del self._buckets[sender]


def rate_rule(settings: Settings) -> RateRule | None:
    """The configured rule; None when the limit is off (`rate_limit_burst=0`)."""
    if settings.rate_limit_burst <= 0:
        return None
    return RateRule(
        burst=settings.rate_limit_burst,
        per_second=settings.rate_limit_per_s,
        button_cost=settings.rate_limit_button_cost,
    )


def open_rate_limiter(settings: Settings) -> RateLimiter | None:
    """Beside the conversation state: in Redis (one limit across every bot process) when the
    state is there, else in this process; None when the limit is off."""
    rule = rate_rule(settings)
    if rule is None:
        return None
    if settings.state_backend == "redis":
        from core.infra.ratelimit_redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url, rule, settings.redis_prefix)
    return LocalRateLimiter(rule)
