"""The health and metrics server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
import redis
from prometheus_client import REGISTRY

from core.infra import metrics
from core.infra.health import HealthServer, serve
from core.infra.settings import Settings
from core.turn.recommendation import (
    MeasuredRecommender,
    RecommendationRequest,
    RecommenderUnavailable,
    Suggestion,
)

REDIS_URL = "redis://127.0.0.1:6379/15"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def server() -> object:
    problems: dict[str, str | None] = {"store": None}
    health = HealthServer("127.0.0.1", 0, "test", {"store": lambda: problems["store"]}).start()
    yield health, problems
    health.stop()


def test_healthz_ok_then_failing_then_draining(server: tuple[HealthServer, dict]) -> None:
    health, problems = server
    code, body = get(f"{health.url}/healthz")
    assert code == 200
    assert json.loads(body)["checks"] == {"store": "ok"}
    problems["store"] = "redis refused the connection"
    code, body = get(f"{health.url}/healthz")
    assert code == 503
    assert json.loads(body)["checks"]["store"] == "redis refused the connection"
    problems["store"] = None
    health.drain()
    code, body = get(f"{health.url}/healthz")
    assert (code, json.loads(body)["status"]) == (503, "draining")


def test_metrics_endpoint_shows_recorded_counts(server: tuple[HealthServer, dict]) -> None:
    health, _ = server
    labels = {"platform": "probe", "intent": "greeting", "decision": "small_talk"}
    metrics.record_turn("probe", "greeting", "small_talk", 0.02)
    metrics.record_turn("probe", "greeting", "small_talk", 0.03)
    metrics.record_feedback("not_for_me")
    code, text = get(f"{health.url}/metrics")
    assert code == 200
    assert 'concierge_turns_total{decision="small_talk",intent="greeting",platform="probe"} 2.0' \
        in text
    assert 'concierge_turn_seconds_count{platform="probe"} 2.0' in text
    assert REGISTRY.get_sample_value("concierge_turns_total", labels) == 2.0
    assert code == 200 and get(f"{health.url}/nothing")[0] == 404


def test_queue_depth_is_read_from_the_broker_when_scraped() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    queue = "concierge-test-queue"
    client.delete(queue)
    try:
        metrics.watch_queues(REDIS_URL, [queue])
        client.rpush(queue, "a", "b", "c")
        assert REGISTRY.get_sample_value(
            "concierge_recommender_queue_depth", {"queue": queue}) == 3.0
        client.lpop(queue)
        assert REGISTRY.get_sample_value(
            "concierge_recommender_queue_depth", {"queue": queue}) == 2.0
    finally:
        client.delete(queue)
        metrics.watch_queues("redis://127.0.0.1:1/0", [])  # leaves no collector on DB 15


def test_queue_depth_with_the_broker_down_gives_no_sample() -> None:
    metrics.watch_queues("redis://127.0.0.1:1/0", ["celery"])
    assert REGISTRY.get_sample_value(
        "concierge_recommender_queue_depth", {"queue": "celery"}) is None


def test_port_zero_serves_nothing_and_a_taken_port_says_what_to_do() -> None:
    assert serve(Settings(metrics_port=0), "chat") is None
    taken = HealthServer("127.0.0.1", 0, "first").start()
    try:
        port = int(taken.url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="CONCIERGE_METRICS_PORT"):
            serve(Settings(metrics_port=port), "second")
    finally:
        taken.stop()


@dataclass(frozen=True)
class Snapshot:
    calls: int
    successes: int
    failures: dict[str, int]
    breaker: str


class Client:
    def __init__(self) -> None:
        self.now = Snapshot(0, 0, {}, "closed")

    def stats(self) -> Snapshot:
        return self.now


def test_llm_counters_and_breaker_are_read_at_scrape_time() -> None:
    client = Client()
    metrics.watch_llm(client)
    assert REGISTRY.get_sample_value("concierge_llm_circuit_state") == 0.0
    client.now = Snapshot(9, 4, {"timeout": 5}, "open")
    assert REGISTRY.get_sample_value("concierge_llm_calls_total", {"outcome": "ok"}) == 4.0
    assert REGISTRY.get_sample_value("concierge_llm_calls_total", {"outcome": "timeout"}) == 5.0
    assert REGISTRY.get_sample_value("concierge_llm_circuit_state") == 2.0
    client.now = Snapshot(10, 5, {"timeout": 5}, "half_open")
    assert REGISTRY.get_sample_value("concierge_llm_circuit_state") == 1.0


class Flaky:
    def __init__(self) -> None:
        self.down = False

    def recommend(self, request: RecommendationRequest) -> list[Suggestion]:
        if self.down:
            raise RecommenderUnavailable("no scoring worker answered in time")
        return []


def test_recommender_jobs_are_timed_with_their_outcome() -> None:
    inner = Flaky()
    measured = MeasuredRecommender(inner, backend="probe")

    def count(outcome: str) -> float:
        value = REGISTRY.get_sample_value(
            "concierge_recommender_job_seconds_count", {"backend": "probe", "outcome": outcome})
        return value or 0.0

    measured.recommend(RecommendationRequest(user_id="C0001", text="jacket"))
    inner.down = True
    with pytest.raises(RecommenderUnavailable):
        measured.recommend(RecommendationRequest(user_id="C0001", text="jacket"))
    assert (count("ok"), count("unavailable")) == (1.0, 1.0)
