"""A slow turn against an agent's hand-over, through `Conversation.handle` and a real
`SupportDesk`, on both state stores with leases a fraction of a second long.

A turn slower than its lease keeps the conversation (the agent's claim waits and then applies);
a turn whose process stalls past its lease loses it, and then fails honestly instead of writing
the escalation it read before the agent claimed the ticket back over the claim.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.handover.deliveries.redis import RedisDeliveryQueue
from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.escalation import SupportDesk
from core.handover.tickets.redis import RedisTicketStore
from core.handover.tickets.sqlite import SqliteTicketStore
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import Shop, load_shop
from core.state.redis import RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from core.turn import replies
from core.turn.conversation import Conversation, Services
from core.turn.messages import CollectingOutbox, Incoming
from core.turn.understanding import Intent, Sentiment, Understanding
from tests.conftest import TEST_REDIS, redis_namespace
from tests.core.state.test_lock_lease import stalled
from tests.core.turn.test_conversation import FilteringRecommender, ScriptedUnderstander, says

LEASE_S = 0.3
CONVERSATION = "terminal:C0001:slow"
SLOW = "hello? anyone there?"
SCRIPT = {"I want a person": says(Intent.HUMAN_AGENT), SLOW: says(Intent.OTHER, Sentiment.NEGATIVE)}


@pytest.fixture(scope="module")
def demo() -> Shop:
    return load_shop(DEFAULT_DEMO_DIR)


@dataclass
class SlowUnderstander:
    """The scripted understander, slow on one message: it says when it started, then waits
    for `go` (another thread or process decides how long)."""

    started: object  # threading.Event or multiprocessing.Event
    go: object
    wait_s: float = 30.0

    def understand(self, text: str, state: ConversationState) -> Understanding:
        if text == SLOW:
            self.started.set()  # type: ignore[attr-defined]
            self.go.wait(self.wait_s)  # type: ignore[attr-defined]
        return ScriptedUnderstander(dict(SCRIPT)).understand(text, state)


@dataclass
class Storage:
    backend: str
    path: Path
    prefix: str
    demo: Shop

    def desk(self) -> SupportDesk:
        """A desk on its own handles, as another process (or the agents' app) holds one."""
        if self.backend == "sqlite":
            return SupportDesk(
                SqliteTicketStore(self.path),
                SqliteDeliveryQueue(self.path),
                SqliteStateStore(self.path, lease_s=LEASE_S),
            )
        return SupportDesk(
            RedisTicketStore(TEST_REDIS, self.prefix),
            RedisDeliveryQueue(TEST_REDIS, self.prefix),
            RedisStateStore(TEST_REDIS, self.prefix, lease_s=LEASE_S),
        )

    def conversation(self, understander: object) -> Conversation:
        desk = self.desk()
        services = Services(
            store=desk.states,
            understander=understander,  # type: ignore[arg-type]
            recommender=FilteringRecommender(self.demo.catalog),
            catalog=self.demo.catalog,
            orders=self.demo.orders,
            knowledge=self.demo.knowledge,
            escalations=desk,
        )
        return Conversation(services)


@pytest.fixture(params=["sqlite", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, demo: Shop) -> Iterator[Storage]:
    with redis_namespace("test-turn-lock", TEST_REDIS) as prefix:
        yield Storage(request.param, tmp_path / "state.sqlite3", prefix, demo)


def say(conversation: Conversation, text: str) -> list[str]:
    outbox = CollectingOutbox()
    conversation.handle(Incoming(CONVERSATION, "C0001", text=text, thread_id="th"), outbox)
    return [reply.text for reply in outbox.replies]


def escalated(storage: Storage) -> str:
    """The customer asks for a person: an open ticket, its id."""
    quick = storage.conversation(ScriptedUnderstander(dict(SCRIPT)))
    assert say(quick, "I want a person") == [replies.ESCALATED]
    ticket_id = quick.services.store.load(CONVERSATION).escalation.ticket_id
    assert ticket_id is not None
    return ticket_id


def test_a_turn_slower_than_its_lease_keeps_the_conversation(storage: Storage) -> None:
    ticket_id = escalated(storage)
    started, go = threading.Event(), threading.Event()
    slow = storage.conversation(SlowUnderstander(started, go))
    answered: list[list[str]] = []
    customer = threading.Thread(target=lambda: answered.append(say(slow, SLOW)))
    customer.start()
    try:
        assert started.wait(20)
        # The agent claims while the turn thinks for four leases: the claim's hand-over waits
        # for the turn's lock, then sets the escalation on top of the turn's state.
        threading.Timer(LEASE_S * 4, go.set).start()
        storage.desk().claim(ticket_id, "U_AGENT", "Ann")
    finally:
        go.set()
        customer.join(20)
    assert answered == [[]]  # relayed to the agent, nothing said by the assistant
    state = storage.desk().states.load(CONVERSATION)
    assert state.escalation.status == "claimed"
    assert SLOW in [turn.text for turn in state.transcript]


def _slow_turn(storage: Storage, started: object, go: object, result: object) -> None:
    """The customer's turn in its own process (a bot process), reporting what it answered."""
    slow = storage.conversation(SlowUnderstander(started, go))
    result.put(say(slow, SLOW))  # type: ignore[attr-defined]


def test_a_turn_stalled_past_its_lease_fails_and_the_claim_stands(storage: Storage) -> None:
    ticket_id = escalated(storage)
    ctx = multiprocessing.get_context("fork")
    started, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    bot = ctx.Process(target=_slow_turn, args=(storage, started, go, result))
    bot.start()
    try:
        assert started.wait(20)
        sqlite_path = str(storage.path) if storage.backend == "sqlite" else None
        with stalled(bot, sqlite_path):  # the bot process stops: it cannot renew its lease
            storage.desk().claim(ticket_id, "U_AGENT", "Ann")
        go.set()
        assert result.get(timeout=30) == [replies.INTERNAL_ERROR]
    finally:
        go.set()
        bot.join(30)
    state = storage.desk().states.load(CONVERSATION)
    assert state.escalation.status == "claimed"
    assert SLOW not in [turn.text for turn in state.transcript]  # the failed turn left nothing
