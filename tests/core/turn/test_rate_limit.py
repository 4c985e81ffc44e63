"""A flooding sender through whole turns: refused before the lock, the model and the agents.

Real stores (SQLite, Redis DB 13), the real support desk and delivery queue; the limiter's clock
stands still (the Redis one takes it in place of Redis's time), so exactly the burst passes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.deliveries.store import AGENTS_TOPIC
from core.handover.escalation import SupportDesk
from core.handover.tickets.sqlite import SqliteTicketStore
from core.infra.ratelimit import RATE_LIMITED, LocalRateLimiter, RateLimiter, RateRule
from core.infra.ratelimit_redis import RedisRateLimiter
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import Shop, load_shop
from core.state.redis import RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState, StateStore
from core.turn import replies
from core.turn.conversation import Conversation, Services
from core.turn.messages import CollectingOutbox, Incoming, Reply
from core.turn.understanding import Intent, Sentiment, Understanding
from tests.conftest import TEST_REDIS, Clock, redis_namespace
from tests.core.handover.test_escalation import drain
from tests.core.turn.test_conversation import FilteringRecommender, says

RULE = RateRule(burst=8, per_second=1.0, button_cost=0.5)
FLOOD = 100


@pytest.fixture(scope="module")
def demo() -> Shop:
    return load_shop(DEFAULT_DEMO_DIR)


@dataclass
class CountingUnderstander:
    """Counts what reaches the model: a refused message must never get here."""

    heard: list[str] = field(default_factory=list)

    def understand(self, text: str, state: ConversationState) -> Understanding:
        self.heard.append(text)
        if text.startswith("this is ridiculous"):
            return says(Intent.COMPLAINT, Sentiment.NEGATIVE)
        if text == "hi":
            return says(Intent.GREETING)
        return Understanding(intent=Intent.OTHER, source="script")


def conversation_over(
    demo: Shop, store: StateStore, limiter: RateLimiter | None, desk: SupportDesk | None = None
) -> Conversation:
    services = Services(
        store=store,
        understander=CountingUnderstander(),
        recommender=FilteringRecommender(demo.catalog),
        catalog=demo.catalog,
        orders=demo.orders,
        knowledge=demo.knowledge,
        escalations=desk,
        rate_limiter=limiter,
    )
    return Conversation(services)


def send(
    conversation: Conversation, user: str, text: str = "", button: str | None = None
) -> list[Reply]:
    outbox = CollectingOutbox()
    conversation.handle(
        Incoming(f"t:{user}", user, text=text, button=button, thread_id="th"), outbox
    )
    return outbox.replies


def heard(conversation: Conversation) -> list[str]:
    understander = conversation.services.understander
    assert isinstance(understander, CountingUnderstander)
    return understander.heard


def test_a_flood_is_cut_to_the_burst_with_one_notice(
    tmp_path: Path, demo: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    conversation = conversation_over(
        demo, SqliteStateStore(tmp_path / "state.sqlite3"), LocalRateLimiter(RULE, clock)
    )
    caplog.set_level(logging.DEBUG)
    answers = [send(conversation, "flooder", f"flood message {i}") for i in range(FLOOD)]
    answered = [i for i, got in enumerate(answers) if got and got[0].text != replies.TOO_FAST]
    notices = [i for i, got in enumerate(answers) if got and got[0].text == replies.TOO_FAST]
    assert answered == list(range(RULE.burst))
    assert notices == [RULE.burst]  # the first refusal is told; the rest get nothing
    assert sum(len(got) for got in answers) == RULE.burst + 1
    assert answers[RULE.burst][0].conversation_id == "t:flooder"
    assert answers[RULE.burst][0].thread_id == "th"
    assert conversation.last_turn is not None and conversation.last_turn.decision == RATE_LIMITED
    # Nothing of a refused message reached the model, the state or the transcript.
    assert heard(conversation) == [f"flood message {i}" for i in range(RULE.burst)]
    state = conversation.services.store.load("t:flooder")
    assert state.turns == RULE.burst
    said = [t.text for t in state.transcript if t.role == "customer"]
    assert said == [f"flood message {i}" for i in range(RULE.burst)]
    # Every refusal is logged as a rate-limited turn, without what was written.
    fields = [getattr(record, "fields", {}) for record in caplog.records]
    limited = [f for f in fields if f.get("decision") == RATE_LIMITED]
    assert len(limited) == FLOOD - RULE.burst
    assert not any("flood message 99" in f"{r.getMessage()} {f}"
                   for r, f in zip(caplog.records, fields, strict=True))
    # Another customer, meanwhile, is served as usual.
    for _ in range(RULE.burst):
        assert [r.text for r in send(conversation, "someone else", "hi")] == [replies.GREETING]
    # The flooder's allowance comes back at the sustained rate.
    clock.now += 2.0
    assert len([send(conversation, "flooder", "again") for _ in range(2)]) == 2
    assert heard(conversation).count("again") == 2


def test_button_presses_count_too(tmp_path: Path, demo: Shop) -> None:
    conversation = conversation_over(
        demo, SqliteStateStore(tmp_path / "state.sqlite3"), LocalRateLimiter(RULE, Clock())
    )
    answers = [send(conversation, "presser", button="more:P9999:1") for _ in range(FLOOD)]
    answered = [got for got in answers if got and got[0].text == replies.UNKNOWN_BUTTON]
    assert len(answered) == RULE.burst / RULE.button_cost
    assert sum(got[0].text == replies.TOO_FAST for got in answers if got) == 1


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with redis_namespace("test-ratelimit-turns") as prefix:
        yield prefix


def test_processes_sharing_redis_limit_the_sum(demo: Shop, redis_prefix: str) -> None:
    """Two bot processes (two Conversations, each with its own clients) over one Redis."""
    clock = Clock()
    processes = [
        conversation_over(
            demo,
            RedisStateStore(TEST_REDIS, redis_prefix),
            RedisRateLimiter(TEST_REDIS, RULE, redis_prefix, clock=clock),
        )
        for _ in range(2)
    ]
    answers = [send(processes[i % 2], "flooder", f"flood {i}") for i in range(FLOOD)]
    texts = [got[0].text for got in answers if got]
    assert texts.count(replies.TOO_FAST) == 1
    assert len(texts) == RULE.burst + 1
    assert len(heard(processes[0])) + len(heard(processes[1])) == RULE.burst
    assert processes[0].services.store.load("t:flooder").turns == RULE.burst
    # Other customers are not limited by the flooder's bucket.
    assert [r.text for r in send(processes[1], "someone else", "hi")] == [replies.GREETING]


def test_an_escalated_flooder_reaches_the_agents_only_up_to_the_limit(
    tmp_path: Path, demo: Shop
) -> None:
    path = tmp_path / "state.sqlite3"
    desk = SupportDesk(
        SqliteTicketStore(path), SqliteDeliveryQueue(path, lease_s=1.0), SqliteStateStore(path),
        sla_s=120,
    )
    clock = Clock()
    conversation = conversation_over(demo, desk.states, LocalRateLimiter(RULE, clock), desk)
    send(conversation, "angry", "this is ridiculous")
    assert [r.text for r in send(conversation, "angry", "this is ridiculous again")] == [
        replies.ESCALATED
    ]
    ticket_id = desk.states.load("t:angry").escalation.ticket_id
    assert ticket_id is not None
    drain(desk, AGENTS_TOPIC)
    clock.now += RULE.burst * RULE.interval_s  # the whole allowance back before the flood

    answers = [send(conversation, "angry", f"hello?? {i}") for i in range(FLOOD)]
    relayed = [d.text for d in drain(desk, AGENTS_TOPIC) if d.kind == "customer_message"]
    assert relayed == [f"hello?? {i}" for i in range(RULE.burst)]
    assert [got[0].text for got in answers if got] == [replies.TOO_FAST]
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None
    assert not any(e.text == f"hello?? {RULE.burst}" for e in ticket.transcript)
