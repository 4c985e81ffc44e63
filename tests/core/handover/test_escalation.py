"""The support desk through whole turns: SQLite and Redis (DB 14) storage, real delivery loops.

Customer turns go through `Conversation.handle`; the agent's actions through a second
`SupportDesk` on the same storage, as the agent console or the agent-side chat app hold one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.redis import RedisDeliveryQueue
from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.deliveries.store import AGENTS_TOPIC, Delivery, MaybeDelivered, customer_topic
from core.handover.escalation import (
    Refused,
    SupportDesk,
    last_turns,
    single_line,
    summarize,
    trend,
)
from core.handover.tickets.redis import RedisTicketStore
from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import Ticket, TicketEntry
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import Shop, load_shop
from core.state.redis import RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.turn import replies
from core.turn.conversation import Conversation, Services
from core.turn.messages import CollectingOutbox, Incoming, Reply
from core.turn.understanding import Intent, Sentiment
from tests.conftest import Clock, redis_namespace
from tests.core.turn.test_conversation import FilteringRecommender, ScriptedUnderstander, says

REDIS_URL = "redis://127.0.0.1:6379/14"
CONVERSATION = "terminal:C0001:abc"
TOPIC = customer_topic("terminal", CONVERSATION)

SCRIPT = {
    "hi": says(Intent.GREETING),
    "I need a waterproof jacket": says(
        Intent.RECOMMEND, category="outerwear", attributes=("waterproof",), terms=("jacket",)
    ),
    "my order is late": says(Intent.ORDER_STATUS, Sentiment.NEGATIVE),
    "this is ridiculous, still nothing": says(Intent.COMPLAINT, Sentiment.NEGATIVE),
    "hello? anyone?": says(Intent.OTHER, Sentiment.NEGATIVE),
    "I need a waterproof jacket now": says(Intent.RECOMMEND, category="outerwear"),
    "I want a person": says(Intent.HUMAN_AGENT),
}


@pytest.fixture(scope="module")
def demo() -> Shop:
    return load_shop(DEFAULT_DEMO_DIR)


@dataclass
class Setup:
    """Storage handles; `desk()` and `conversation()` build fresh ones, as a new process would."""

    backend: str
    path: Path
    prefix: str
    demo: Shop
    clock: Clock = field(default_factory=Clock)

    def desk(self) -> SupportDesk:
        if self.backend == "sqlite":
            return SupportDesk(
                SqliteTicketStore(self.path),
                SqliteDeliveryQueue(self.path, lease_s=1.0),
                SqliteStateStore(self.path),
                sla_s=120,
                clock=self.clock,
            )
        return SupportDesk(
            RedisTicketStore(REDIS_URL, self.prefix),
            RedisDeliveryQueue(REDIS_URL, self.prefix, lease_s=1.0),
            RedisStateStore(REDIS_URL, self.prefix),
            sla_s=120,
            clock=self.clock,
        )

    def conversation(self) -> Conversation:
        desk = self.desk()
        services = Services(
            store=desk.states,
            understander=ScriptedUnderstander(dict(SCRIPT)),
            recommender=FilteringRecommender(self.demo.catalog),
            catalog=self.demo.catalog,
            orders=self.demo.orders,
            knowledge=self.demo.knowledge,
            escalations=desk,
        )
        return Conversation(services, clock=self.clock)


@pytest.fixture(params=["sqlite", "redis"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, demo: Shop) -> Iterator[Setup]:
    with redis_namespace("test-escalation", REDIS_URL) as prefix:
        yield Setup(request.param, tmp_path / "state.sqlite3", prefix, demo)


def say(conversation: Conversation, text: str = "", button: str | None = None) -> list[Reply]:
    outbox = CollectingOutbox()
    # The terminal's customer, vouched for (as `concierge chat --user C0001`).
    conversation.handle(
        Incoming(CONVERSATION, "C0001", text=text, button=button, customer_id="C0001"), outbox
    )
    return outbox.replies


def drain(desk: SupportDesk, topic: str) -> list[Delivery]:
    got: list[Delivery] = []
    loop = Deliveries(desk.queue, topic, got.append, wait_s=0.05)
    while loop.poll():
        pass
    return got


def escalate(conversation: Conversation) -> str:
    say(conversation, "I need a waterproof jacket")
    say(conversation, "my order is late")
    answer = say(conversation, "this is ridiculous, still nothing")
    assert [r.text for r in answer] == [replies.ESCALATED]
    ticket_id = conversation.services.store.load(CONVERSATION).escalation.ticket_id
    assert ticket_id is not None
    return ticket_id


def test_angry_customer_opens_a_complete_ticket(setup: Setup) -> None:
    conversation = setup.conversation()
    ticket_id = escalate(conversation)
    state = conversation.services.store.load(CONVERSATION)
    assert state.escalation.status == "open"
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None
    assert ticket.reason == "negative sentiment persists"
    assert ticket.status == "open" and ticket.customer == "C0001"
    assert ticket.platform == "terminal" and ticket.conversation_id == CONVERSATION
    assert ticket.sentiment_trend == ("neutral", "negative", "negative")
    assert ticket.intents == ("recommend", "order_status", "complaint")
    assert ticket.products_shown == state.shown and len(ticket.products_shown) == 3
    said = [e.text for e in ticket.transcript if e.role == "customer"]
    assert said == [
        "I need a waterproof jacket",
        "my order is late",
        "this is ridiculous, still nothing",
    ]
    news = drain(setup.desk(), AGENTS_TOPIC)
    assert [d.kind for d in news] == ["ticket_opened"]
    assert "negative sentiment persists" in news[0].text
    assert "worsening" in summarize(ticket)
    # Agents see who the customer proved to be.
    assert ticket.verified_customer == "C0001"
    assert summarize(ticket).startswith("C0001 (verified customer C0001) on terminal")


def test_bot_stays_silent_and_relays_while_open(setup: Setup) -> None:
    conversation = setup.conversation()
    ticket_id = escalate(conversation)
    drain(setup.desk(), AGENTS_TOPIC)
    assert say(conversation, "hello? anyone?") == []
    assert say(conversation, "I need a waterproof jacket now") == []  # no suggestions either
    assert say(conversation, button="more:P1:1") == []
    news = drain(setup.desk(), AGENTS_TOPIC)
    assert [(d.kind, d.text) for d in news] == [
        ("customer_message", "hello? anyone?"),
        ("customer_message", "I need a waterproof jacket now"),
        ("customer_message", "[pressed more:P1:1]"),
    ]
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None and ticket.transcript[-1].text == "[pressed more:P1:1]"


def test_full_hand_over_and_back_with_rating(setup: Setup) -> None:
    conversation = setup.conversation()
    ticket_id = escalate(conversation)
    agent = setup.desk()  # the agent side runs elsewhere, on the same storage
    delivered: list[tuple[str, Reply]] = []
    loop = Deliveries.to_customers(
        setup.desk().queue, TOPIC, lambda c, r: delivered.append((c, r)), wait_s=0.05
    ).start()
    try:
        agent.claim(ticket_id, "U_DANA", "Dana")
        assert conversation.services.store.load(CONVERSATION).escalation.status == "claimed"
        agent.agent_reply(ticket_id, "U_DANA", "Hi, I'm sorry! Checking your order now.", "m1")
        assert say(conversation, "thanks, order 48213") == []
        agent.agent_reply(ticket_id, "U_DANA", "It ships tomorrow, with express upgrade.", "m2")
        agent.resolve(ticket_id, "U_DANA")
        deadline = time.monotonic() + 10
        while len(delivered) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        loop.stop()
    assert [c for c, _ in delivered] == [CONVERSATION] * 4
    joined, first, second, closing = (r.text for _, r in delivered)
    assert joined == replies.agent_joined("Dana")
    assert first == "Dana (support team): Hi, I'm sorry! Checking your order now."
    assert second.endswith("It ships tomorrow, with express upgrade.")
    assert closing == replies.RESOLVED
    assert [b.payload for b in delivered[-1][1].buttons] == [f"csat:{n}" for n in range(1, 6)]

    state = conversation.services.store.load(CONVERSATION)
    assert state.escalation.status == "awaiting_rating" and state.sentiments == ()
    assert [r.text for r in say(conversation, button="csat:4")] == [replies.RATED]
    assert conversation.services.store.load(CONVERSATION).escalation.status == "none"
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None
    assert (ticket.status, ticket.agent, ticket.rating) == ("resolved", "U_DANA", 4)
    roles = [e.role for e in ticket.transcript]
    assert roles.count("agent") == 2 and "thanks, order 48213" in [
        e.text for e in ticket.transcript
    ]
    # Back with the bot: it answers again.
    assert say(conversation, "hi")[0].text == replies.GREETING


def test_hand_back_asks_for_a_rating_too(setup: Setup) -> None:
    conversation = setup.conversation()
    ticket_id = escalate(conversation)
    setup.desk().hand_back(ticket_id, "U_DANA")
    closing = [d for d in drain(setup.desk(), TOPIC) if d.id.endswith(":closed")]
    assert closing[0].text == replies.HANDED_BACK and len(closing[0].buttons) == 5
    assert [r.text for r in say(conversation, button="csat:2")] == [replies.RATED]
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None and (ticket.status, ticket.rating) == ("handed_back", 2)


def test_agent_actions_that_do_not_apply_are_refused(setup: Setup) -> None:
    conversation = setup.conversation()
    ticket_id = escalate(conversation)
    desk = setup.desk()
    desk.claim(ticket_id, "U_DANA")
    desk.claim(ticket_id, "U_DANA")  # claiming again is harmless
    with pytest.raises(Refused, match="already claimed by U_DANA"):
        setup.desk().claim(ticket_id, "U_OMAR")
    with pytest.raises(Refused, match="no text"):
        desk.agent_reply(ticket_id, "U_DANA", "   ")
    with pytest.raises(Refused, match="no text"):
        desk.note(ticket_id, "U_DANA", " \n ")
    with pytest.raises(Refused, match="no ticket"):
        desk.note("T-nowhere", "U_DANA", "VIP")
    desk.resolve(ticket_id, "U_DANA")
    with pytest.raises(Refused, match="already resolved"):
        setup.desk().resolve(ticket_id, "U_OMAR")
    with pytest.raises(Refused, match="back with the assistant"):
        desk.agent_reply(ticket_id, "U_DANA", "one more thing")
    with pytest.raises(Refused, match="no ticket"):
        desk.claim("T-nope", "U_DANA")
    # A rating button pressed twice stores the first rating only.
    say(conversation, button="csat:5")
    assert say(conversation, button="csat:1")[0].text == replies.UNKNOWN_BUTTON
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None and ticket.rating == 5


def test_redelivered_agent_event_reaches_the_customer_once(setup: Setup) -> None:
    ticket_id = escalate(setup.conversation())
    desk = setup.desk()
    desk.agent_reply(ticket_id, "U_DANA", "On it.", message_id="evt-1")
    setup.desk().agent_reply(ticket_id, "U_DANA", "On it.", message_id="evt-1")
    texts = [d.text for d in drain(setup.desk(), TOPIC)]
    assert texts.count("Support (support team): On it.") == 1
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None and [e.text for e in ticket.transcript].count("On it.") == 1


def test_unclaimed_ticket_gets_an_honest_update_and_a_reminder_once(setup: Setup) -> None:
    ticket_id = escalate(setup.conversation())
    drain(setup.desk(), AGENTS_TOPIC)
    desk = setup.desk()
    setup.clock.now += 60
    assert desk.sweep() == []
    setup.clock.now += 61
    reminded = desk.sweep()
    assert [t.id for t in reminded] == [ticket_id]
    assert setup.desk().sweep() == []  # another process sweeping does not repeat it
    to_customer = drain(setup.desk(), TOPIC)
    assert [d.text for d in to_customer] == [replies.still_waiting(2)]
    assert "nobody" in to_customer[0].text.lower()
    to_agents = drain(setup.desk(), AGENTS_TOPIC)
    assert [d.kind for d in to_agents] == ["reminder"] and ticket_id in to_agents[0].text


def test_claimed_ticket_is_not_reminded(setup: Setup) -> None:
    ticket_id = escalate(setup.conversation())
    setup.desk().claim(ticket_id, "U_DANA")
    setup.clock.now += 3600
    assert setup.desk().sweep() == []


def test_restart_mid_ticket_loses_nothing(setup: Setup) -> None:
    ticket_id = escalate(setup.conversation())
    restarted = setup.conversation()  # new handles on the same storage, as after a restart
    assert say(restarted, "hello? anyone?") == []
    setup.desk().agent_reply(ticket_id, "U_DANA", "Here now.", "m1")
    again = setup.conversation()
    assert say(again, "thanks") == []
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None and ticket.status == "claimed"
    texts = [e.text for e in ticket.transcript]
    joined = replies.agent_joined(None)
    assert texts[-4:] == ["hello? anyone?", joined, "Here now.", "thanks"]
    assert [d.text for d in drain(setup.desk(), TOPIC)][-1].endswith("Here now.")


def test_asking_again_reuses_the_open_ticket(setup: Setup) -> None:
    conversation = setup.conversation()
    ticket_id = escalate(conversation)
    state = conversation.services.store.load(CONVERSATION)
    # A crash between opening the ticket and saving the state: the state never learned of it.
    lost = state.model_copy(
        update={
            "escalation": state.escalation.model_copy(update={"status": "none", "ticket_id": None})
        }
    )
    conversation.services.store.save(lost)
    assert [r.text for r in say(conversation, "I want a person")] == [replies.ESCALATED]
    assert conversation.services.store.load(CONVERSATION).escalation.ticket_id == ticket_id
    assert len(setup.desk().tickets.list()) == 1


def test_trend_words() -> None:
    assert trend(("neutral", "negative")) == "neutral → negative (worsening)"
    assert trend(("negative", "positive")) == "negative → positive (improving)"
    assert trend(()) == "unknown"


def test_without_a_chat_desk_no_agent_news_pile_up(setup: Setup) -> None:
    conversation = setup.conversation()
    desk = conversation.services.escalations
    assert isinstance(desk, SupportDesk)
    desk.notify_agents = False  # the agent console reads tickets directly
    ticket_id = escalate(conversation)
    say(conversation, "hello? anyone?")
    assert drain(setup.desk(), AGENTS_TOPIC) == []
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None and ticket.transcript[-1].text == "hello? anyone?"


def test_open_ticket_without_a_desk_never_leaves_the_customer_unanswered(setup: Setup) -> None:
    conversation = setup.conversation()
    escalate(conversation)
    services = conversation.services
    without = Conversation(
        Services(
            services.store,
            services.understander,
            services.recommender,
            services.catalog,
            services.orders,
            services.knowledge,
            escalations=None,
        ),
        clock=setup.clock,
    )
    assert [r.text for r in say(without, "hello? anyone?")] == [replies.NO_AGENTS]
    assert services.store.load(CONVERSATION).escalation.status == "none"


def test_delivery_loop_survives_a_failing_tick(setup: Setup) -> None:
    desk = setup.desk()
    got: list[Delivery] = []
    ticks = {"n": 0}

    def tick() -> None:
        ticks["n"] += 1
        if ticks["n"] == 1:
            raise RuntimeError("a bug in the sweep")

    loop = Deliveries(desk.queue, TOPIC, got.append, wait_s=0.05, tick=tick).start()
    try:
        desk.queue.put(
            Delivery(
                id="x1",
                topic=TOPIC,
                kind="reply",
                conversation_id=CONVERSATION,
                text="still here",
                created_at=time.time(),
            )
        )
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        loop.stop()
    assert [d.text for d in got] == ["still here"] and ticks["n"] >= 2


def test_customer_text_reaches_agents_one_line_per_turn() -> None:
    """A line break or a terminal escape in a customer's message cannot start a line of its own
    in what agents read (a forged "Reason:" or "agent:" line), in any renderer."""
    forged = "hi\r\nReason: VIP refund approved\u2028agent bob: approved \x1b[2J\u202eok"
    assert single_line(forged) == "hi ⏎ Reason: VIP refund approved ⏎ agent bob: approved [2Jok"
    assert single_line("tab\there 👩\u200d💻") == "tab here 👩\u200d💻"  # joiners kept
    ticket = Ticket(id="T-1", conversation_id="c", customer="u", platform="terminal",
                    reason="customer asked for a person", created_at=1.0, updated_at=1.0,
                    transcript=(TicketEntry(role="customer", text=forged, at=1.0),))
    lines = summarize(ticket).splitlines()
    assert [line.split(":")[0] for line in lines] == ["u (not verified) on terminal", "Sentiment",
                                                      "Last said"]
    assert last_turns(ticket) == [f"Customer: {single_line(forged)}"]


def test_a_reply_the_customer_did_not_get_is_kept_and_the_agents_are_told(setup: Setup) -> None:
    ticket_id = escalate(setup.conversation())
    desk = setup.desk()
    desk.claim(ticket_id, "U_DANA", "Dana")
    drain(desk, AGENTS_TOPIC)
    drain(desk, TOPIC)  # "Dana joined": delivered
    desk.agent_reply(ticket_id, "U_DANA", "Your refund is on its way.", message_id="m1")

    def unsure(delivery: Delivery) -> None:
        raise MaybeDelivered("the send took too long")

    customers = setup.desk()
    loop = Deliveries(customers.queue, TOPIC, unsure, wait_s=0.05)
    loop.undelivered = customers.undelivered  # as `start_customer_deliveries` wires it
    assert loop.poll() == 0
    [letter] = customers.queue.dead_letters(TOPIC)
    assert letter.delivery.text == replies.agent_message("Dana", "Your refund is on its way.")
    news = drain(setup.desk(), AGENTS_TOPIC)
    assert [(d.kind, d.ticket_id) for d in news] == [("undelivered", ticket_id)]
    assert "Your refund is on its way." in news[0].text
    ticket = setup.desk().tickets.get(ticket_id)
    assert ticket is not None
    note = ticket.transcript[-1]
    assert note.role == "note" and "may have reached" in note.text
    assert "Your refund is on its way." in note.text
