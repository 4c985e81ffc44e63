"""What the per-sender rate limit costs a turn: the check alone, and a whole refused turn.

    python -m tests.core.infra.bench_ratelimit [--checks 10000] [--redis redis://127.0.0.1:6379/13]

For each backend (in-process, Redis), times `--checks` admissions one by one: half from senders
within their allowance (passed), half from one flooding sender (refused), and then a refused
message through `Conversation.handle` (the check, the log line, the metrics; the store and the
model are never reached). Prints one line per figure and a final JSON line (microseconds).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis

from core.infra import logs
from core.infra.percentiles import median, percentile
from core.infra.ratelimit import RATE_LIMITED, LocalRateLimiter, RateLimiter, RateRule
from core.infra.ratelimit_redis import RedisRateLimiter
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import load_shop
from core.state.sqlite import SqliteStateStore
from core.turn.conversation import Conversation, Services
from core.turn.messages import CollectingOutbox, Incoming
from tests.core.turn.test_conversation import FilteringRecommender, ScriptedUnderstander

RULE = RateRule()  # the shipped defaults: burst 8, 1 message/s


def timed_checks(limiter: RateLimiter, checks: int) -> dict[str, list[float]]:
    """Microseconds per admission: senders within their allowance, and one flooder."""
    samples: dict[str, list[float]] = {"passed": [], "refused": []}
    for _ in range(RULE.burst):  # the flooder's burst, spent before timing
        limiter.admit("flooder")
    for n in range(checks):
        # The flooder still gets one message a second through: classed by what happened.
        sender = "flooder" if n % 2 else f"sender-{n}"
        started = time.perf_counter()
        admission = limiter.admit(sender)
        elapsed = (time.perf_counter() - started) * 1e6
        samples["passed" if admission.allowed else "refused"].append(elapsed)
    return samples


def timed_refused_turns(limiter: RateLimiter, turns: int, folder: Path) -> list[float]:
    """Microseconds of `Conversation.handle` for a refused message (the flooder's one message
    a second that passes is a whole turn: left out)."""
    shop = load_shop(DEFAULT_DEMO_DIR)
    services = Services(
        store=SqliteStateStore(folder / "state.sqlite3"),
        understander=ScriptedUnderstander(),
        recommender=FilteringRecommender(shop.catalog),
        catalog=shop.catalog,
        orders=shop.orders,
        knowledge=shop.knowledge,
        rate_limiter=limiter,
    )
    conversation = Conversation(services)
    incoming = Incoming("bench:flood", "turn-flooder", text="hello hello hello")
    for _ in range(RULE.burst + 1):  # the burst and the one notice, before timing
        conversation.handle(incoming, CollectingOutbox())
    samples = []
    for _ in range(turns):
        outbox = CollectingOutbox()
        started = time.perf_counter()
        conversation.handle(incoming, outbox)
        elapsed = (time.perf_counter() - started) * 1e6
        assert conversation.last_turn is not None
        if conversation.last_turn.decision == RATE_LIMITED:
            samples.append(elapsed)
    return samples


def figures(samples: Sequence[float]) -> dict[str, float]:
    return {"p50_us": round(median(samples), 1), "p99_us": round(percentile(samples, 99), 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.core.infra.bench_ratelimit")
    parser.add_argument("--checks", type=int, default=10_000, help="admissions per backend")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a Redis to use")
    args = parser.parse_args(argv)
    logs.configure("WARNING", "text")  # a refused turn logs at INFO: not written, still built
    logging.getLogger("core").setLevel(logging.WARNING)
    prefix = f"bench-ratelimit-{uuid.uuid4().hex[:8]}"
    result: dict[str, dict[str, float]] = {}
    try:
        backends: dict[str, RateLimiter] = {
            "inprocess": LocalRateLimiter(RULE),
            "redis": RedisRateLimiter(args.redis, RULE, prefix),
        }
        with tempfile.TemporaryDirectory() as directory:
            for name, limiter in backends.items():
                checks = timed_checks(limiter, args.checks)
                for outcome, samples in checks.items():
                    result[f"{name}_check_{outcome}"] = figures(samples)
                turns = timed_refused_turns(limiter, args.checks // 2, Path(directory) / name)
                result[f"{name}_refused_turn"] = figures(turns)
    finally:
        client = redis.Redis.from_url(args.redis)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    for name, values in result.items():
        print(f"{name}: p50 {values['p50_us']} us, p99 {values['p99_us']} us")
    print(json.dumps({"checks": args.checks, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
