"""A message is never lost between the platform and the customer: `bots.intake` with a real
SQLite inbox, real conversation state and the real core (demo shop, a one-intent understander).

- a send that fails after the turn was saved: the replay sends the replies the core kept, and
  the turn is not run twice;
- a conversation busy in another turn: the message waits and is answered once the lock frees,
  and only after a long bound is the customer asked to send it again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from bots.channel import ConversationOrder, run_turn
from bots.intake import Intake
from bots.ledger.inbox import Pending
from bots.ledger.inbox_sqlite import SqliteInbox
from core.infra.settings import Settings
from core.shop.files import load_shop
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from core.turn import replies
from core.turn.conversation import Conversation, Services
from core.turn.messages import Incoming
from core.turn.recommendation import RecommendationRequest, RecommenderUnavailable, Suggestion
from core.turn.understanding import Intent, Understanding


class Greetings:
    def __init__(self) -> None:
        self.calls = 0

    def understand(self, text: str, state: ConversationState) -> Understanding:
        self.calls += 1
        return Understanding(intent=Intent.GREETING, confidence=0.99, source="test")


class NoRecommender:
    def recommend(self, request: RecommendationRequest) -> list[Suggestion]:
        raise RecommenderUnavailable("not part of this test")


@pytest.fixture
def understander() -> Greetings:
    return Greetings()


@pytest.fixture
def conversation(tmp_path: Path, understander: Greetings) -> Conversation:
    shop = load_shop(Settings().demo_dir)
    services = Services(
        store=SqliteStateStore(tmp_path / "state.sqlite3"), understander=understander,
        recommender=NoRecommender(), catalog=shop.catalog, orders=shop.orders,
        knowledge=shop.knowledge,
    )
    return Conversation(services, lock_timeout_s=0.2)


HI = Incoming("telegram:5", "telegram:5", text="hi", message_id="5:1", platform="telegram")


def test_replies_lost_in_a_failed_send_are_sent_by_the_replay_and_the_turn_runs_once(
    tmp_path: Path, conversation: Conversation, understander: Greetings
):
    sent: list[str] = []
    failures = [RuntimeError("the platform refused the send")]

    async def answer(pending: Pending) -> None:
        for reply in await run_turn(conversation.handle, pending.incoming):
            if failures:
                raise failures.pop()  # after the save: as if the process died here
            sent.append(reply.text)

    async def scenario() -> None:
        order = ConversationOrder()
        inbox = SqliteInbox(tmp_path / "adapters.sqlite3")
        intake = Intake(inbox, "telegram", answer, order.hold, lease_s=0.3)
        pending = await intake.accept("telegram:message:5:1", HI)
        assert pending is not None
        async with order.hold(HI.conversation_id):
            await intake.run(pending)
        assert sent == []
        await asyncio.sleep(0.4)  # the lease runs out: any process may answer it now
        assert await intake.replay_once() == 1
        await intake.drain(10)
        assert await intake.accept("telegram:message:5:1", HI) is None  # a platform retry

    asyncio.run(scenario())
    assert sent == [replies.GREETING]
    assert understander.calls == 1  # the replay got the kept replies; nothing ran twice


def hold_lock(conversation: Conversation, seconds: float) -> threading.Thread:
    taken = threading.Event()

    def busy() -> None:
        with conversation.services.store.lock(HI.conversation_id, 5):
            taken.set()
            time.sleep(seconds)

    thread = threading.Thread(target=busy)
    thread.start()
    taken.wait(5)
    return thread


def test_a_message_for_a_busy_conversation_is_answered_once_the_lock_frees(
    conversation: Conversation,
):
    holder = hold_lock(conversation, 1.5)
    answered = asyncio.run(run_turn(conversation.handle, HI, give_up_after_s=30))
    holder.join()
    assert [r.text for r in answered] == [replies.GREETING]
    assert conversation.services.store.load(HI.conversation_id).turns == 1


def test_a_conversation_busy_too_long_asks_the_customer_to_send_it_again(
    conversation: Conversation,
):
    holder = hold_lock(conversation, 2.0)
    answered = asyncio.run(run_turn(conversation.handle, HI, give_up_after_s=0.6))
    holder.join()
    assert [r.text for r in answered] == [replies.NOT_HANDLED]
    assert conversation.services.store.load(HI.conversation_id).turns == 0
