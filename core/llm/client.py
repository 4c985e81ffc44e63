"""A small client for any OpenAI-compatible chat endpoint, returning validated pydantic models.

Reused by every feature that asks an LLM something (understanding, phrasing, summaries): one
place for the timeout, retries with backoff, the circuit breaker and output validation. The
model only fills a schema; callers decide what to do with the validated value.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from core.infra.logs import event
from core.infra.settings import Settings, settings_section

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

RETRY_AFTER_CAP_S = 10.0  # never sleep longer than this on a server's Retry-After


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: SecretStr | None = None
    timeout_s: float = 10.0
    retries: int = 2  # extra attempts after the first, for transient failures only
    backoff_s: float = 0.5  # first wait; doubles per attempt
    breaker_failures: int = 5  # consecutive failed calls that open the circuit
    breaker_reset_s: float = 30.0  # how long it stays open before one trial call
    max_tokens: int = 200
    temperature: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig:
        """Each field from the setting of the same name prefixed `llm_` (CONCIERGE_LLM_...)."""
        return settings_section(settings, "llm_", cls)


class LlmError(RuntimeError):
    """A call gave no valid answer. `reason` is a short stable word for logs and metrics:
    timeout, connection, rate_limited, server_error, client_error, invalid_json, schema,
    circuit_open."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops calling a failing endpoint for a while, then lets one trial call through."""

    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures_to_open = max(1, failures)
        self.reset_s = reset_s
        self.clock = clock
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.times_opened = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        return self.state is not BreakerState.OPEN

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.opened_at = None

    def record_failure(self) -> None:
        with self._lock:
            self.consecutive_failures += 1
            half_open = self.opened_at is not None  # a failed trial call re-opens at once
            if half_open or self.consecutive_failures >= self.failures_to_open:
                if self.opened_at is None or half_open:
                    self.times_opened += 1
                self.opened_at = self.clock()


@dataclass(frozen=True)
class LlmStats:
    """A snapshot for metrics: calls made, failures by reason, the breaker's state."""

    calls: int
    successes: int
    failures: dict[str, int]
    breaker: str
    breaker_opened: int
    structured_output: bool


def parse_json_object(text: str) -> Any:
    """The JSON object in a reply: the whole text, a fenced block, or the first {...} in it."""
    stripped = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    candidates = [stripped, fenced.group(1).strip()] if fenced else [stripped]
    start = stripped.find("{")
    if start >= 0:
        depth, in_string, escaped = 0, False, False
        for index in range(start, len(stripped)):
            char = stripped[index]
            if in_string:
                escaped = char == "\\" and not escaped
                if char == '"' and not escaped:
                    in_string = False
                continue
            if char == '"':
                in_string = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(stripped[start : index + 1])
                    break
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise LlmError("invalid_json", text[:120])


class LlmClient:
    """`complete_json(messages, Model)` -> a validated `Model`, or `LlmError` saying why not."""

    def __init__(
        self,
        config: LlmConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.sleep = sleep
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s, clock)
        self.structured_output = True  # switched off when the server rejects json_schema
        self._client: Any = None
        self._calls = 0
        self._successes = 0
        self._failures: Counter[str] = Counter()

    def _openai(self) -> Any:
        if self._client is None:
            from openai import OpenAI  # imported on first use: bots that never call an LLM skip it

            key = self.config.api_key.get_secret_value() if self.config.api_key else "unused"
            self._client = OpenAI(
                api_key=key,
                base_url=self.config.base_url,
                timeout=self.config.timeout_s,
                max_retries=0,  # retries are ours: counted, logged and seen by the breaker
            )
        return self._client

    def stats(self) -> LlmStats:
        return LlmStats(
            calls=self._calls,
            successes=self._successes,
            failures=dict(self._failures),
            breaker=self.breaker.state.value,
            breaker_opened=self.breaker.times_opened,
            structured_output=self.structured_output,
        )

    def complete_json(
        self,
        messages: Sequence[dict[str, str]],
        model_type: type[T],
        schema: dict[str, Any] | None = None,
        name: str = "answer",
    ) -> T:
        """Ask, validate against `model_type` (and `schema`, sent as the response format)."""
        if not self.breaker.allow():
            self._failures["circuit_open"] += 1
            raise LlmError("circuit_open", f"{self.config.base_url} failed repeatedly")
        self._calls += 1
        try:
            value = self._with_retries(messages, model_type, schema or
                                       model_type.model_json_schema(), name)
        except LlmError as exc:
            self._failures[exc.reason] += 1
            self.breaker.record_failure()
            event(log, "llm.failed", logging.WARNING, reason=exc.reason, detail=str(exc)[:200],
                  breaker=self.breaker.state.value)
            raise
        self._successes += 1
        self.breaker.record_success()
        return value

    def _with_retries(
        self,
        messages: Sequence[dict[str, str]],
        model_type: type[T],
        schema: dict[str, Any],
        name: str,
    ) -> T:
        attempt = 0
        while True:
            try:
                content = self._request(messages, schema, name)
                return self._validate(content, model_type)
            except LlmError as exc:
                wait = exc.retry_after
                retryable = exc.reason in {"timeout", "connection", "rate_limited",
                                           "server_error"}
                if not retryable or attempt >= self.config.retries:
                    raise
                delay = wait if wait is not None else self.config.backoff_s * (2**attempt)
                event(log, "llm.retry", reason=exc.reason, attempt=attempt + 1,
                      wait_s=round(delay, 2))
                self.sleep(delay)
                attempt += 1

    def _request(self, messages: Sequence[dict[str, str]], schema: dict[str, Any],
                 name: str) -> str:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": list(messages),
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        if self.structured_output:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        try:
            response = self._openai().chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise LlmError("timeout", f"no answer within {self.config.timeout_s}s") from exc
        except openai.APIConnectionError as exc:
            raise LlmError("connection", str(exc)) from exc
        except openai.RateLimitError as exc:
            wait = _retry_after(exc.response.headers.get("retry-after"))
            raise LlmError("rate_limited", str(exc)[:200], retry_after=wait) from exc
        except openai.BadRequestError as exc:
            if self.structured_output:
                # Servers without schema support reject the response format: ask again for
                # plain JSON text (the prompt spells the form out), parsed and validated below.
                self.structured_output = False
                event(log, "llm.schema_unsupported", detail=str(exc)[:200])
                return self._request(messages, schema, name)
            raise LlmError("client_error", str(exc)[:200]) from exc
        except openai.APIStatusError as exc:
            reason = "server_error" if exc.status_code >= 500 else "client_error"
            raise LlmError(reason, f"HTTP {exc.status_code}") from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise LlmError("invalid_json", str(exc)[:200]) from exc
        choices = getattr(response, "choices", None)
        if not choices or choices[0].message is None:
            raise LlmError("invalid_json", "no choices in the response")
        return choices[0].message.content or ""

    def _validate(self, content: str, model_type: type[T]) -> T:
        data = parse_json_object(content)
        try:
            return model_type.model_validate(data)
        except ValidationError as exc:
            raise LlmError("schema", str(exc).replace("\n", " ")[:200]) from exc


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, min(float(header), RETRY_AFTER_CAP_S))
    except ValueError:
        return None
