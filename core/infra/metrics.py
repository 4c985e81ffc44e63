"""Prometheus metrics: what a running Concierge counts, and the calls that count it.

Every process records into prometheus-client's default registry; `core.infra.health` serves it on
/metrics when `metrics_port` is set. Labels take values from small closed sets (platforms,
intents, decisions, outcomes), never ids or text, so the number of series stays bounded.

Metrics (type; labels): meaning
- concierge_turns_total (counter; platform, intent, decision): customer turns handled.
- concierge_turn_seconds (histogram; platform): message in to last reply sent.
- concierge_llm_calls_total (counter; outcome): requests to the LLM endpoint, by how they
  ended (ok, timeout, http_error, invalid, ...).
- concierge_llm_fallbacks_total (counter; reason): messages the local model answered because
  the LLM could not.
- concierge_llm_circuit_state (gauge): 0 closed (LLM used), 1 half-open (one probe allowed),
  2 open (LLM skipped until the reset time).
- concierge_escalations_opened_total (counter; reason): tickets opened for a human agent.
- concierge_escalations_resolved_total (counter; outcome): tickets closed by an agent
  (resolved, handed_back).
- concierge_recommender_job_seconds (histogram; backend, outcome): one recommendation request
  as the caller saw it (for Celery: queue wait + scoring + result round trip).
- concierge_recommender_queue_depth (gauge; queue): scoring jobs waiting in the broker, read
  when scraped.
- concierge_recommender_model_info (gauge; version): 1 for the recommender version this
  process scores with (the promoted version's name, or the model files' content hash).
- concierge_feedback_events_total (counter; kind): suggestion buttons pressed (more_like_this,
  not_for_me, details).
- concierge_rate_limited_total (counter; platform, kind, answer): messages refused by the
  per-sender rate limit, by kind (message, button) and answer (notice: the first of a limited
  stretch, told so; silent: the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.infra.logs import event

log = logging.getLogger(__name__)

# Turn latency spans cached answers (ms) to LLM and worker round trips (seconds).
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

TURNS = Counter(
    "concierge_turns_total", "Customer turns handled.", ("platform", "intent", "decision")
)
TURN_SECONDS = Histogram(
    "concierge_turn_seconds", "Time from a customer message in to the last reply sent.",
    ("platform",), buckets=TURN_BUCKETS,
)
LLM_FALLBACKS = Counter(
    "concierge_llm_fallbacks_total",
    "Messages the local model answered because the LLM could not.", ("reason",),
)
ESCALATIONS_OPENED = Counter(
    "concierge_escalations_opened_total", "Tickets opened for a human agent.", ("reason",)
)
ESCALATIONS_RESOLVED = Counter(
    "concierge_escalations_resolved_total", "Tickets closed by an agent.", ("outcome",)
)
RECOMMENDER_JOB_SECONDS = Histogram(
    "concierge_recommender_job_seconds", "One recommendation request, as the caller saw it.",
    ("backend", "outcome"), buckets=JOB_BUCKETS,
)
FEEDBACK = Counter(
    "concierge_feedback_events_total", "Suggestion buttons pressed.", ("kind",)
)
RATE_LIMITED = Counter(
    "concierge_rate_limited_total", "Messages refused by the per-sender rate limit.",
    ("platform", "kind", "answer"),
)
MODEL_INFO = Gauge(
    "concierge_recommender_model_info", "The recommender version this process scores with.",
    ("version",),
)

CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def record_turn(platform: str, intent: str, decision: str, seconds: float) -> None:
    TURNS.labels(platform, intent, decision).inc()
    TURN_SECONDS.labels(platform).observe(seconds)


def record_llm_fallback(reason: str) -> None:
    LLM_FALLBACKS.labels(reason).inc()


def record_escalation_opened(reason: str) -> None:
    ESCALATIONS_OPENED.labels(reason).inc()


def record_escalation_resolved(outcome: str) -> None:
    ESCALATIONS_RESOLVED.labels(outcome).inc()


def record_recommender_job(backend: str, outcome: str, seconds: float) -> None:
    RECOMMENDER_JOB_SECONDS.labels(backend, outcome).observe(seconds)


def record_served_model(version: str) -> None:
    """The recommender version this process serves now (the one before is dropped)."""
    MODEL_INFO.clear()
    MODEL_INFO.labels(version[:64]).set(1)


def record_feedback(kind: str) -> None:
    FEEDBACK.labels(kind).inc()


def record_rate_limited(platform: str, button: bool, notified: bool) -> None:
    RATE_LIMITED.labels(platform, "button" if button else "message",
                        "notice" if notified else "silent").inc()


def rate_limited_so_far() -> int:
    """Messages the rate limit refused in this process (benchmarks check they saw none)."""
    return int(sum(sample.value for metric in RATE_LIMITED.collect()
                   for sample in metric.samples if sample.name.endswith("_total")))


class QueueDepth(Collector):
    """Reads the length of the broker's queues when Prometheus scrapes, so it is never stale.

    The Celery Redis transport keeps each queue as a Redis list named after the queue.
    """

    def __init__(self, redis_url: str, queues: Sequence[str], timeout_s: float = 0.5) -> None:
        from core.infra.redis_client import redis_client

        self.queues = tuple(queues)
        self.client = redis_client(redis_url, timeout_s)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis

        family = GaugeMetricFamily(
            "concierge_recommender_queue_depth", "Scoring jobs waiting in the broker.",
            labels=("queue",),
        )
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                depths = pipe.execute()
        except redis.RedisError as exc:
            # No sample rather than a made-up zero: the scrape shows the broker is unreadable.
            event(log, "metrics.queue_unreadable", logging.WARNING, error=str(exc))
            depths = []
        for queue, depth in zip(self.queues, depths, strict=False):
            family.add_metric((queue,), float(depth))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering must not touch the broker.
        yield GaugeMetricFamily(
            "concierge_recommender_queue_depth", "Scoring jobs waiting in the broker.",
            labels=("queue",),
        )


_watched: dict[tuple[str, tuple[str, ...]], QueueDepth] = {}


def watch_queues(redis_url: str, queues: Sequence[str]) -> QueueDepth:
    """Report the depth of these broker queues on /metrics (once per process and broker)."""
    key = (redis_url, tuple(queues))
    if key not in _watched:
        for other in list(_watched.values()):
            REGISTRY.unregister(other)
        _watched.clear()
        collector = QueueDepth(redis_url, queues)
        REGISTRY.register(collector)
        _watched[key] = collector
    return _watched[key]


class LlmSnapshot(Protocol):
    """What `core.llm.client.LlmClient.stats()` returns."""

    @property
    def successes(self) -> int: ...
    @property
    def failures(self) -> Mapping[str, int]: ...  # failed calls by reason
    @property
    def breaker(self) -> str: ...  # closed, half_open or open


class LlmSource(Protocol):
    def stats(self) -> LlmSnapshot: ...


class LlmCalls(Collector):
    """Reads the LLM client's own counters and breaker state when Prometheus scrapes.

    The breaker turns half-open by the clock, not by an event, so reading it at scrape time is
    the only way the gauge is never stale.
    """

    def __init__(self, source: LlmSource) -> None:
        self.source = source

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.source.stats()
        calls = CounterMetricFamily(
            "concierge_llm_calls", "Requests to the LLM endpoint, by how they ended.",
            labels=("outcome",),
        )
        calls.add_metric(("ok",), stats.successes)
        for reason, count in sorted(stats.failures.items()):
            calls.add_metric((reason,), count)
        yield calls
        yield GaugeMetricFamily(
            "concierge_llm_circuit_state", "LLM circuit breaker: 0 closed, 1 half-open, 2 open.",
            value=CIRCUIT_VALUES.get(str(stats.breaker), 2),
        )

    def describe(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield CounterMetricFamily("concierge_llm_calls", "", labels=("outcome",))
        yield GaugeMetricFamily("concierge_llm_circuit_state", "")


_llm: list[LlmCalls] = []


def watch_llm(source: LlmSource) -> None:
    """Report this LLM client's calls and breaker on /metrics (one client per process)."""
    for collector in _llm:
        REGISTRY.unregister(collector)
    _llm[:] = [LlmCalls(source)]
    REGISTRY.register(_llm[0])
