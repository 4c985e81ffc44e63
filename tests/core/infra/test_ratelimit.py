"""The per-sender rate limit, both backends through one suite: in-process and real Redis.

A stepping clock stands in for time (the Redis limiter takes it in place of Redis's `TIME`),
so each test says exactly how much time passed; one test uses Redis's own time with a rate so
slow that no run could be long enough to matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from core.infra.ratelimit import (
    Admission,
    LocalRateLimiter,
    RateLimiter,
    RateRule,
    open_rate_limiter,
)
from core.infra.ratelimit_redis import RedisRateLimiter, sender_digest
from core.infra.settings import Settings
from tests.conftest import TEST_REDIS, Clock, redis_namespace

RULE = RateRule(burst=8, per_second=1.0, button_cost=0.5)


Build = Callable[[RateRule], RateLimiter]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "redis"])
def build(request: pytest.FixtureRequest, clock: Clock) -> Iterator[Build]:
    """Limiters sharing one backend: each call is another holder (for Redis, another process)."""
    if request.param == "local":
        shared: dict[RateRule, LocalRateLimiter] = {}
        yield lambda rule: shared.setdefault(rule, LocalRateLimiter(rule, clock))
        return
    with redis_namespace("test-ratelimit") as prefix:
        yield lambda rule: RedisRateLimiter(TEST_REDIS, rule, prefix, clock=clock)


def allowed(limiter: RateLimiter, sender: str, count: int, button: bool = False) -> int:
    return sum(limiter.admit(sender, button).allowed for _ in range(count))


def test_a_burst_then_refused(build: Build) -> None:
    limiter = build(RULE)
    assert allowed(limiter, "u1", 100) == RULE.burst


def test_the_allowance_comes_back_at_the_sustained_rate(build: Build, clock: Clock) -> None:
    limiter = build(RULE)
    assert allowed(limiter, "u1", 20) == 8
    clock.now += 3.0
    assert allowed(limiter, "u1", 20) == 3
    clock.now += 0.5
    assert allowed(limiter, "u1", 20) == 0
    clock.now += 0.5
    assert allowed(limiter, "u1", 20) == 1


def test_senders_are_limited_apart(build: Build) -> None:
    limiter = build(RULE)
    assert allowed(limiter, "flooder", 50) == 8
    assert allowed(limiter, "someone else", 8) == 8


def test_button_presses_cost_less(build: Build) -> None:
    limiter = build(RULE)
    assert allowed(limiter, "u1", 100, button=True) == 16


def test_one_notice_per_limited_stretch(build: Build, clock: Clock) -> None:
    limiter = build(RULE)
    assert allowed(limiter, "u1", 8) == 8
    refusals = [limiter.admit("u1") for _ in range(30)]
    assert not any(r.allowed for r in refusals)
    assert [r.notify for r in refusals] == [True] + [False] * 29
    # Still flooding: one message a second gets through, and no new notice.
    clock.now += 1.0
    assert limiter.admit("u1").allowed
    assert limiter.admit("u1") == Admission(allowed=False, notify=False)
    # Quiet until the whole burst is back: the stretch is over, a new flood is told again.
    clock.now += 8.0
    assert allowed(limiter, "u1", 8) == 8
    assert limiter.admit("u1").notify


def test_two_holders_share_one_limit_in_redis(clock: Clock) -> None:
    """Two bot processes, each with its own limiter over the same Redis: the sum is limited."""
    with redis_namespace("test-ratelimit") as prefix:
        first = RedisRateLimiter(TEST_REDIS, RULE, prefix, clock=clock)
        second = RedisRateLimiter(TEST_REDIS, RULE, prefix, clock=clock)
        passed = sum(
            (first if i % 2 else second).admit("u1").allowed for i in range(100)
        )
        assert passed == RULE.burst
        notices = [(first if i % 2 else second).admit("u1").notify for i in range(10)]
        assert notices == [False] * 10  # the stretch was already answered by one of them


def test_redis_time_and_expiry() -> None:
    """Redis's own clock; the bucket key expires once the allowance would be whole again."""
    slow = RateRule(burst=3, per_second=0.01)  # 100 s per message: no run is that slow
    with redis_namespace("test-ratelimit") as prefix:
        limiter = RedisRateLimiter(TEST_REDIS, slow, prefix)
        assert allowed(limiter, "u1", 10) == 3
        client = redis.Redis.from_url(TEST_REDIS)
        ttl_ms = client.pttl(f"{prefix}:ratelimit:{sender_digest('u1')}")
        assert 290_000 < ttl_ms <= 300_001
        # The sender's id is nowhere in Redis (nothing for "delete my data" to find).
        assert [key for key in client.scan_iter(f"{prefix}:*") if b"u1" in key] == []
        client.close()


def test_a_redis_outage_lets_messages_through() -> None:
    """Fail open: the turn then meets the same outage in the state store and says so."""
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", RULE, "nowhere", timeout_s=0.2)
    assert limiter.admit("u1").allowed


def test_factory_follows_the_state_backend() -> None:
    assert open_rate_limiter(Settings(rate_limit_burst=0)) is None
    assert isinstance(open_rate_limiter(Settings(state_backend="sqlite")), LocalRateLimiter)
    redis_backed = open_rate_limiter(Settings(state_backend="redis", redis_url=TEST_REDIS))
    assert isinstance(redis_backed, RedisRateLimiter)


def test_rules_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError):
        RateRule(burst=0)
    with pytest.raises(ValueError):
        RateRule(per_second=0)
    with pytest.raises(ValueError):
        RateRule(button_cost=0)
