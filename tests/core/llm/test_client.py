"""The LLM client against real OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from core.llm.client import (
    BreakerState,
    CircuitBreaker,
    LlmClient,
    LlmConfig,
    LlmError,
    parse_json_object,
)
from core.llm.understanders import Verdict, verdict_schema
from tests.conftest import StandIn

GOOD = '{"intent": "order_status", "sentiment": "negative", "confidence": 0.9}'
SCHEMA = verdict_schema(("order_status", "greeting", "other"))
ASK = [{"role": "user", "content": "Classify: where is order 48213?"}]


class Sleeps:
    """Records the waits the client asks for instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(base_url: str, **overrides: object) -> tuple[LlmClient, Sleeps]:
    values: dict[str, object] = {"base_url": base_url, "model": "stand-in", "timeout_s": 2.0,
                                 "retries": 2, "backoff_s": 0.25, "breaker_failures": 3,
                                 "breaker_reset_s": 30.0}
    values.update(overrides)
    sleeps = Sleeps()
    return LlmClient(LlmConfig(**values), sleep=sleeps), sleeps  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_server_returns_schema_valid_json(llama_server: str) -> None:
    llm, _ = client(llama_server, model="gemma-3-270m", timeout_s=180.0, retries=0)
    verdict = llm.complete_json(ASK, Verdict, SCHEMA, name="understanding")
    assert verdict.intent in {"order_status", "greeting", "other"}
    assert 0.0 <= verdict.confidence <= 1.0
    stats = llm.stats()
    assert (stats.calls, stats.successes, stats.structured_output) == (1, 1, True)


def test_valid_answer_is_parsed_and_schema_sent(stand_in: StandIn) -> None:
    stand_in.script = [f"ok:{GOOD}"]
    llm, _ = client(stand_in.base_url)
    verdict = llm.complete_json(ASK, Verdict, SCHEMA, name="understanding")
    assert verdict == Verdict(intent="order_status", sentiment="negative", confidence=0.9)
    sent = stand_in.requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["properties"]["intent"]["enum"] == list(
        ("order_status", "greeting", "other"))


def test_timeout_is_retried_then_reported(stand_in: StandIn) -> None:
    stand_in.script = ["slow:1.5"]
    llm, sleeps = client(stand_in.base_url, timeout_s=0.3, retries=1)
    started = time.monotonic()
    with pytest.raises(LlmError) as error:
        llm.complete_json(ASK, Verdict, SCHEMA)
    assert error.value.reason == "timeout"
    assert len(stand_in.requests) == 2  # first try and one retry
    assert sleeps.waits == [0.25]
    assert time.monotonic() - started < 3.0
    assert llm.stats().failures == {"timeout": 1}


def test_server_error_retried_with_backoff_then_succeeds(stand_in: StandIn) -> None:
    stand_in.script = ["status:500", "status:503", f"ok:{GOOD}"]
    llm, sleeps = client(stand_in.base_url)
    assert llm.complete_json(ASK, Verdict, SCHEMA).intent == "order_status"
    assert sleeps.waits == [0.25, 0.5]  # doubling backoff
    assert len(stand_in.requests) == 3


def test_server_error_every_time_fails_after_retries(stand_in: StandIn) -> None:
    stand_in.script = ["status:500"]
    llm, _ = client(stand_in.base_url, retries=2)
    with pytest.raises(LlmError) as error:
        llm.complete_json(ASK, Verdict, SCHEMA)
    assert error.value.reason == "server_error"
    assert len(stand_in.requests) == 3


def test_rate_limit_waits_for_retry_after(stand_in: StandIn) -> None:
    stand_in.script = ["rate_limit:2", f"ok:{GOOD}"]
    llm, sleeps = client(stand_in.base_url)
    assert llm.complete_json(ASK, Verdict, SCHEMA).sentiment == "negative"
    assert sleeps.waits == [2.0]  # the server's Retry-After, not the backoff


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("text:I think the customer is asking about an order.", "invalid_json"),
        ("text:{\"intent\": \"order_status\", \"sentiment\": ", "invalid_json"),
        ("ok:{\"intent\": \"order_status\", \"sentiment\": \"furious\", \"confidence\": 2}",
         "schema"),
        ("ok:{\"label\": \"order_status\"}", "schema"),
        ("ok:[1, 2, 3]", "schema"),
        ("garbage", "invalid_json"),
        ("status:401", "client_error"),
    ],
)
def test_invalid_output_is_an_error_not_retried(stand_in: StandIn, step: str, reason: str) -> None:
    stand_in.script = [step]
    llm, sleeps = client(stand_in.base_url)
    with pytest.raises(LlmError) as error:
        llm.complete_json(ASK, Verdict, SCHEMA)
    assert error.value.reason == reason
    assert len(stand_in.requests) == 1
    assert sleeps.waits == []


def test_server_without_schema_support_gets_plain_json_request(stand_in: StandIn) -> None:
    stand_in.script = [f"no_schema:{GOOD}"]
    llm, _ = client(stand_in.base_url)
    verdict = llm.complete_json(ASK, Verdict, SCHEMA)
    assert verdict.intent == "order_status"
    assert "response_format" in stand_in.requests[0]
    assert "response_format" not in stand_in.requests[1]
    assert llm.stats().structured_output is False
    # Later calls go straight to plain JSON.
    llm.complete_json(ASK, Verdict, SCHEMA)
    assert len(stand_in.requests) == 3


def test_circuit_opens_after_repeated_failures_then_recovers(stand_in: StandIn) -> None:
    now = [1000.0]
    stand_in.script = ["status:500"]
    llm = LlmClient(
        LlmConfig(base_url=stand_in.base_url, model="m", retries=0, breaker_failures=3,
                  breaker_reset_s=30.0),
        clock=lambda: now[0],
        sleep=Sleeps(),
    )
    for _ in range(3):
        with pytest.raises(LlmError):
            llm.complete_json(ASK, Verdict, SCHEMA)
    assert llm.breaker.state is BreakerState.OPEN
    with pytest.raises(LlmError) as error:
        llm.complete_json(ASK, Verdict, SCHEMA)
    assert error.value.reason == "circuit_open"
    assert len(stand_in.requests) == 3  # the open circuit did not call the server
    now[0] += 31
    assert llm.breaker.state is BreakerState.HALF_OPEN
    stand_in.script = [*stand_in.script * 3, f"ok:{GOOD}"]
    assert llm.complete_json(ASK, Verdict, SCHEMA).intent == "order_status"
    assert llm.breaker.state is BreakerState.CLOSED
    stats = llm.stats()
    assert stats.failures == {"server_error": 3, "circuit_open": 1}
    assert (stats.breaker, stats.breaker_opened) == ("closed", 1)


def test_failed_trial_call_reopens_the_circuit() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow()
    now[0] = 11
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and breaker.times_opened == 2


def test_unreachable_endpoint_is_a_connection_error() -> None:
    from tests.conftest import free_port

    llm, sleeps = client(f"http://127.0.0.1:{free_port()}/v1", retries=1)
    with pytest.raises(LlmError) as error:
        llm.complete_json(ASK, Verdict, SCHEMA)
    assert error.value.reason == "connection"
    assert sleeps.waits == [0.25]


class Pair(BaseModel):
    a: int
    b: str


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": "x"}',
        'Here you go: {"a": 1, "b": "x"} hope it helps',
        '```json\n{"a": 1, "b": "x"}\n```',
        'prefix {"a": 1, "b": "x", "note": "a } brace in a string"} suffix',
    ],
)
def test_json_found_in_plain_text(text: str) -> None:
    data = parse_json_object(text)
    assert Pair.model_validate(data) == Pair(a=1, b="x")


def test_no_json_in_text_is_an_error() -> None:
    with pytest.raises(LlmError):
        parse_json_object("no braces here")
