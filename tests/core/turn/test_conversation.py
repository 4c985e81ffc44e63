"""Whole turns through Conversation.handle: real SQLite store, the demo store's data.

The understander and recommender here are small scripted implementations of core's protocols,
so each test states exactly what the message meant and checks what the core did with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from core.activity.record import TurnActivity
from core.shop.catalog import Catalog
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import Shop, load_shop
from core.state.redis import RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.state.store import ANSWERED_LIMIT, ConversationState
from core.turn import replies
from core.turn.conversation import Conversation, Services, clean_text
from core.turn.messages import CollectingOutbox, Incoming
from core.turn.recommendation import (
    Evidence,
    RecommendationRequest,
    RecommenderUnavailable,
    Suggestion,
)
from core.turn.understanding import Intent, Sentiment, Slots, Understanding


@pytest.fixture(scope="module")
def demo() -> Shop:
    return load_shop(DEFAULT_DEMO_DIR)


@dataclass
class ScriptedUnderstander:
    """Understands exactly the messages a test scripted; anything else is out of scope."""

    script: dict[str, Understanding] = field(default_factory=dict)
    fail: bool = False

    def understand(self, text: str, state: ConversationState) -> Understanding:
        if self.fail:
            raise RuntimeError("model crashed")
        return self.script.get(text, Understanding(intent=Intent.OTHER, source="script"))


@dataclass
class FilteringRecommender:
    """Catalog filter + rating order: enough to exercise the turn logic around suggestions."""

    catalog: Catalog
    down: bool = False
    requests: list[RecommendationRequest] = field(default_factory=list)

    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        self.requests.append(request)
        if self.down:
            raise RecommenderUnavailable("no workers answered")
        items = [
            p
            for p in self.catalog.all()
            if p.in_stock
            and p.id not in request.exclude
            and (request.category is None or p.category == request.category)
            and (request.budget_max is None or p.price <= request.budget_max)
            and all(a in p.attributes for a in request.attributes)
        ]
        items.sort(key=lambda p: (-p.rating, p.id))
        return [
            Suggestion(
                item_id=p.id,
                title=p.title,
                price=p.price,
                score=p.rating,
                evidence=Evidence(
                    price=p.price,
                    rating=p.rating,
                    review_count=p.review_count,
                    matched_attributes=request.attributes,
                    budget_max=request.budget_max,
                ),
            )
            for p in items[: request.k]
        ]


def says(
    intent: Intent, sentiment: Sentiment = Sentiment.NEUTRAL, **slots: object
) -> Understanding:
    return Understanding(
        intent=intent,
        sentiment=sentiment,
        slots=Slots(**slots),  # type: ignore[arg-type]
        confidence=0.9,
        source="script",
    )


SCRIPT = {
    "hi": says(Intent.GREETING),
    "I need a waterproof jacket": says(
        Intent.RECOMMEND, category="outerwear", attributes=("waterproof",), terms=("jacket",)
    ),
    "something cheaper": says(Intent.REFINE, cheaper=True),
    "what is your return policy?": says(Intent.RETURN_REFUND),
    "is the first one in stock?": says(Intent.PRODUCT_QUESTION, ordinal=1),
    "I want a person": says(Intent.HUMAN_AGENT),
}


@pytest.fixture
def recommender(demo: Shop) -> FilteringRecommender:
    return FilteringRecommender(demo.catalog)


@pytest.fixture
def understander() -> ScriptedUnderstander:
    return ScriptedUnderstander(dict(SCRIPT))


@pytest.fixture
def conversation(
    tmp_path: Path,
    demo: Shop,
    understander: ScriptedUnderstander,
    recommender: FilteringRecommender,
) -> Conversation:
    services = Services(
        store=SqliteStateStore(tmp_path / "state.sqlite3"),
        understander=understander,
        recommender=recommender,
        catalog=demo.catalog,
        orders=demo.orders,
        knowledge=demo.knowledge,
    )
    return Conversation(services)


def turn(
    conversation: Conversation,
    text: str = "",
    button: str | None = None,
    message_id: str | None = None,
    conversation_id: str = "t:1",
    customer_id: str | None = None,
) -> CollectingOutbox:
    outbox = CollectingOutbox()
    conversation.handle(
        Incoming(
            conversation_id,
            "C0001",
            text=text,
            button=button,
            message_id=message_id,
            thread_id="th",
            customer_id=customer_id,
        ),
        outbox,
    )
    return outbox


def test_greeting(conversation: Conversation) -> None:
    reply = turn(conversation, "hi").pop()
    assert reply.text == replies.GREETING
    assert reply.thread_id == "th" and reply.conversation_id == "t:1"


def test_recommend_then_cheaper(conversation: Conversation, demo: Shop) -> None:
    first = turn(conversation, "I need a waterproof jacket").pop()
    assert len(first.buttons) == 9
    shown = conversation.services.store.load("t:1").last_shown
    assert len(shown) == 3
    for item in shown:
        product = demo.catalog.get(item.item_id)
        assert product is not None and "waterproof" in product.attributes
        assert product.title in first.text
    cheapest = min(item.price for item in shown)

    second = turn(conversation, "something cheaper").pop()
    newer = conversation.services.store.load("t:1").last_shown
    assert newer and all(item.price < cheapest for item in newer)
    assert all(item.item_id not in {s.item_id for s in shown} for item in newer)
    assert "under $" in second.text


def test_a_new_request_hands_the_messages_vector_to_the_recommender(
    conversation: Conversation, understander: ScriptedUnderstander,
    recommender: FilteringRecommender,
) -> None:
    """One encode per turn: the understander's vector of a new request goes with it. A
    follow-up's request also holds earlier words, so its vector would be wrong: none goes."""
    ask = "I need a waterproof jacket"
    understander.script[ask] = SCRIPT[ask].model_copy(update={"sentence_vector": "VEC"})
    understander.script["something cheaper"] = SCRIPT["something cheaper"].model_copy(
        update={"sentence_vector": "OTHER"})
    turn(conversation, ask)
    turn(conversation, "something cheaper")
    assert [r.text_vector for r in recommender.requests] == ["VEC", None]
    state = conversation.services.store.load("t:1")
    assert "VEC" not in state.model_dump_json()  # the vector is never kept in the state


def test_buttons_record_feedback(conversation: Conversation) -> None:
    reply = turn(conversation, "I need a waterproof jacket").pop()
    skip = next(b for b in reply.buttons if b.payload.startswith("skip:"))
    item_id = skip.payload.split(":")[1]
    after = turn(conversation, button=skip.payload).pop()
    state = conversation.services.store.load("t:1")
    assert state.feedback[-1].item_id == item_id and state.feedback[-1].kind == "not_for_me"
    assert state.feedback[-1].position == 1
    assert item_id not in {item.item_id for item in state.last_shown}
    assert after.text.startswith("Got it")

    details = next(b for b in after.buttons if b.payload.startswith("details:"))
    detail_reply = turn(conversation, button=details.payload).pop()
    assert "Rated" in detail_reply.text


def test_unknown_button_gets_a_clear_answer(conversation: Conversation) -> None:
    assert turn(conversation, button="more:P9999:1").pop().text == replies.UNKNOWN_BUTTON


def test_product_question_by_ordinal(conversation: Conversation, demo: Shop) -> None:
    turn(conversation, "I need a waterproof jacket")
    first = conversation.services.store.load("t:1").last_shown[0]
    answer = turn(conversation, "is the first one in stock?").pop().text
    assert answer.startswith(first.title) and "stock" in answer.lower()


def test_order_status_for_its_owner(
    conversation: Conversation, understander: ScriptedUnderstander, demo: Shop
) -> None:
    order = next(o for o in demo.orders.for_customer("C0009") if o.tracking_number)
    understander.script["where is it"] = says(Intent.ORDER_STATUS, order_id=order.id)
    reply = turn(conversation, "where is it", customer_id="C0009").pop()
    assert f"#{order.id}" in reply.text and order.tracking_number in reply.text
    assert reply.private  # a group chat's adapter sends it by direct message
    assert conversation.services.store.load("t:1").transcript[-1].private


def test_another_customers_order_reads_like_an_unknown_one(
    conversation: Conversation, understander: ScriptedUnderstander, demo: Shop
) -> None:
    order = next(o for o in demo.orders.for_customer("C0009") if o.tracking_number)
    understander.script["where is it"] = says(Intent.ORDER_STATUS, order_id=order.id)
    understander.script["order 11111"] = says(Intent.ORDER_STATUS, order_id="11111")
    theirs = turn(conversation, "where is it", customer_id="C0001").pop().text
    unknown = turn(conversation, "order 11111", customer_id="C0001").pop().text
    assert order.tracking_number not in theirs and f"{order.total:,.2f}" not in theirs
    assert theirs == unknown.replace("11111", order.id)


def test_an_unverified_customer_gets_only_the_ways_to_verify(
    conversation: Conversation, understander: ScriptedUnderstander, demo: Shop
) -> None:
    order = next(o for o in demo.orders.for_customer("C0009") if o.tracking_number)
    understander.script["where is it"] = says(Intent.ORDER_STATUS, order_id=order.id)
    text = turn(conversation, "where is it").pop().text
    assert order.tracking_number not in text and order.carrier not in text
    assert text.startswith("To show order details I first need to know it's you")
    assert conversation.services.store.load("t:1").order_to_verify == order.id


def test_order_status_without_number_lists_recent_orders(
    conversation: Conversation, understander: ScriptedUnderstander
) -> None:
    understander.script["where are my orders"] = says(Intent.ORDER_STATUS)
    text = turn(conversation, "where are my orders", customer_id="C0001").pop().text
    assert text.startswith("Your most recent")


def test_policy_answer_cites_its_article(conversation: Conversation) -> None:
    text = turn(conversation, "what is your return policy?").pop().text
    assert "From our help article" in text and "30" in text


def test_empty_and_whitespace(conversation: Conversation) -> None:
    for text in ("", "   \n\t "):
        assert turn(conversation, text).pop().text == replies.EMPTY_MESSAGE
    assert conversation.services.store.load("t:1").turns == 0


def test_huge_message_is_truncated_with_notice(conversation: Conversation) -> None:
    reply = turn(conversation, "hi" + " x" * 50_000).pop()
    assert reply.text.startswith("(Your message was very long")
    transcript = conversation.services.store.load("t:1").transcript
    assert len(transcript[0].text) <= 4000


def test_control_characters_are_removed() -> None:
    assert clean_text("hi\x00\x1b[31m there\u202e") == ("hi [31m there", False)


def test_duplicate_delivery_runs_once_and_gets_the_kept_replies(
    conversation: Conversation,
) -> None:
    """An adapter replays a message whose replies may not have gone out (it died after the
    save): the turn is not run again, and the replies it gave come back as they were."""
    first = turn(conversation, "hi", message_id="m1").replies
    again = turn(conversation, "hi", message_id="m1").replies
    assert again == first and len(first) == 1
    assert conversation.services.store.load("t:1").turns == 1
    for number in range(2, 2 + ANSWERED_LIMIT):  # m1's replies are no longer kept
        turn(conversation, "hi", message_id=f"m{number}")
    assert turn(conversation, "hi", message_id="m1").replies == []
    assert conversation.services.store.load("t:1").turns == 1 + ANSWERED_LIMIT


def test_recommender_down_gives_degraded_answer(
    conversation: Conversation, recommender: FilteringRecommender
) -> None:
    recommender.down = True
    assert turn(conversation, "I need a waterproof jacket").pop().text == replies.RECOMMENDER_DOWN


def test_crash_leaves_state_untouched(
    conversation: Conversation, understander: ScriptedUnderstander
) -> None:
    turn(conversation, "hi")
    before = conversation.services.store.load("t:1")
    understander.fail = True
    assert turn(conversation, "hi").pop().text == replies.INTERNAL_ERROR
    assert conversation.services.store.load("t:1") == before


def test_store_down_gives_clear_message(
    demo: Shop, understander: ScriptedUnderstander, recommender: FilteringRecommender
) -> None:
    services = Services(
        store=RedisStateStore("redis://127.0.0.1:1/0", timeout_s=0.2),
        understander=understander,
        recommender=recommender,
        catalog=demo.catalog,
        orders=demo.orders,
        knowledge=demo.knowledge,
    )
    assert turn(Conversation(services), "hi").pop().text == replies.STORE_DOWN


def test_escalation_without_agents_is_honest(conversation: Conversation) -> None:
    assert turn(conversation, "I want a person").pop().text == replies.NO_AGENTS
    assert conversation.services.store.load("t:1").escalation.status == "none"


def test_state_keeps_transcript_and_sentiment(conversation: Conversation) -> None:
    turn(conversation, "hi")
    turn(conversation, "I need a waterproof jacket")
    state = conversation.services.store.load("t:1")
    assert [t.role for t in state.transcript] == ["customer", "assistant"] * 2
    assert state.intents == ("greeting", "recommend")
    assert state.sentiments == ("neutral", "neutral")
    assert state.user_id == "C0001"


def test_pointed_item_in_a_colour(conversation: Conversation, understander: ScriptedUnderstander,
                                  demo: Shop) -> None:
    turn(conversation, "I need a waterproof jacket")
    first = conversation.services.store.load("t:1").last_shown[0]
    product = demo.catalog.get(first.item_id)
    assert product is not None and product.colors
    understander.script["the first one in that colour?"] = says(
        Intent.REFINE, ordinal=1, colors=(product.colors[-1],))
    reply = turn(conversation, "the first one in that colour?").pop()
    assert reply.text.startswith(f"Yes, {product.title} comes in {product.colors[-1]}")
    understander.script["the first one in neon?"] = says(Intent.REFINE, ordinal=1,
                                                         colors=("neon",))
    reply = turn(conversation, "the first one in neon?").pop()
    assert reply.text.startswith(f"{product.title} doesn't come in neon")


def test_phrased_explanations_are_checked_against_the_catalog(
    tmp_path: Path, demo: Shop, understander: ScriptedUnderstander,
    recommender: FilteringRecommender,
) -> None:
    class Boastful:
        """Names an attribute no suggestion matched: every phrasing must be rejected."""

        def phrase(self, evidence: Evidence) -> str:
            return "Waterproof and vegan, a favourite."

    services = Services(store=SqliteStateStore(tmp_path / "s.sqlite3"), understander=understander,
                        recommender=recommender, catalog=demo.catalog, orders=demo.orders,
                        knowledge=demo.knowledge, phraser=Boastful())
    text = turn(Conversation(services), "I need a waterproof jacket").pop().text
    assert "vegan" not in text and "Waterproof; " in text


@dataclass
class KeptActivity:
    records: list[TurnActivity] = field(default_factory=list)

    def record(self, activity: TurnActivity) -> None:
        self.records.append(activity)


def test_each_turn_leaves_its_counts_and_no_words(conversation: Conversation) -> None:
    kept = KeptActivity()
    now = [1_764_720_000.0]  # 2025-12-03 00:00 UTC
    counting = Conversation(replace(conversation.services, activity=kept), clock=lambda: now[0])
    reply = turn(counting, "I need a waterproof jacket").pop()
    skip = next(b for b in reply.buttons if b.payload.startswith("skip:"))
    now[0] += 60
    turn(counting, button=skip.payload)
    turn(counting, "hi", conversation_id="t:2")
    now[0] += 86400  # the next day: the first conversation counts again
    turn(counting, "hi")
    first, pressed, other, next_day = kept.records
    assert (first.intent, first.decision, first.shown, first.first_today) == (
        "recommend", "recommend", 3, True)
    assert (pressed.pressed, pressed.feedback, pressed.first_today) == (1, "not_for_me", False)
    assert other.first_today and other.intent == "greeting" and other.shown == 0
    assert next_day.first_today and next_day.day == "2025-12-04"
    kept_text = " ".join(record.model_dump_json() for record in kept.records)
    assert "jacket" not in kept_text and "t:1" not in kept_text and "C0001" not in kept_text


def test_nothing_fits_every_constraint_so_the_nearest_say_what_they_miss(
    conversation: Conversation, understander: ScriptedUnderstander, demo: Shop
) -> None:
    both = [p for p in demo.catalog.all() if p.category == "outerwear" and p.in_stock
            and {"insulated", "waterproof"} <= set(p.attributes)]
    budget = min(p.price for p in both) - 5  # every insulated waterproof coat is over it
    understander.script["a warm waterproof jacket for hiking, under budget"] = says(
        Intent.RECOMMEND, category="outerwear", attributes=("insulated", "waterproof"),
        budget_max=budget)
    reply = turn(conversation, "a warm waterproof jacket for hiking, under budget").pop()
    assert reply.text.startswith("Nothing in stock matches all of insulated waterproof outerwear")
    state = conversation.services.store.load("t:1")
    assert len(state.last_shown) == 3 and len(reply.buttons) == 9
    lines = reply.text.splitlines()
    for item in state.last_shown:
        product = demo.catalog.get(item.item_id)
        assert product is not None and product.category == "outerwear"
        note = lines[lines.index(f"{item.position}. {product.title} — ${product.price:,.2f}") + 1]
        missing = {"insulated", "waterproof"} - set(product.attributes)
        assert all(f"not {attribute}" in note.lower() for attribute in missing)
        assert ("over your budget" in note) == (product.price > budget)
        assert missing or product.price > budget  # each one misses something, and says so

    cheaper = turn(conversation, "something cheaper").pop()
    after = conversation.services.store.load("t:1")
    # The request goes on: same category and attributes, below what was just shown.
    assert after.request.category == "outerwear"
    assert after.request.attributes == ("insulated", "waterproof")
    assert after.request.budget_max is not None and after.request.budget_max <= budget
    assert cheaper.text.startswith(("Nothing in stock", "Here are"))
    assert after.last_shown and not {i.item_id for i in after.last_shown} & {
        i.item_id for i in state.last_shown}


def test_open_request_from_a_known_customer_uses_their_orders(
    conversation: Conversation, understander: ScriptedUnderstander, demo: Shop
) -> None:
    understander.script["surprise me"] = says(Intent.RECOMMEND)
    assert demo.orders.for_customer("C0001")
    personal = turn(conversation, "surprise me", customer_id="C0001").replies
    assert [r.text.splitlines()[0] for r in personal] == [replies.FOR_YOU_HEADING]

    stranger = turn(conversation, "surprise me", conversation_id="t:2").replies
    assert stranger[0].text.startswith(replies.POPULAR_HEADING) and stranger[0].buttons
    assert stranger[1].text == replies.OPEN_QUESTION  # and one question to narrow it down


@dataclass
class SlateTagging:
    """Suggestions as a learning re-ranker returns them: each slate with an id of its own."""

    inner: FilteringRecommender
    made: list[str] = field(default_factory=list)

    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        self.made.append(f"slate{len(self.made) + 1}")
        return [s.model_copy(update={"slate": self.made[-1], "propensity": 0.5})
                for s in self.inner.recommend(request)]


@dataclass
class ClosedSlates:
    closed: list[tuple[str, int | None, str | None]] = field(default_factory=list)

    def close(self, slate: str, position: int | None, kind: str | None) -> None:
        self.closed.append((slate, position, kind))


def test_the_next_turn_closes_a_shown_slate_with_what_was_pressed(
    conversation: Conversation, recommender: FilteringRecommender
) -> None:
    tagging, outcomes = SlateTagging(recommender), ClosedSlates()
    conversation = replace(conversation, services=replace(
        conversation.services, recommender=tagging, slates=outcomes))
    shown = turn(conversation, "I need a waterproof jacket").pop()
    assert conversation.services.store.load("t:1").open_slate == "slate1"
    second = next(b.payload for b in shown.buttons
                  if b.payload.startswith("details:") and b.payload.endswith(":2"))
    turn(conversation, button=second)
    assert outcomes.closed == [("slate1", 2, "details")]
    assert conversation.services.store.load("t:1").open_slate is None
    turn(conversation, button=second)  # pressed again: the slate was closed once
    assert len(outcomes.closed) == 1
    turn(conversation, "something cheaper")
    turn(conversation, "hi")  # a message, nothing pressed
    assert outcomes.closed[1] == ("slate2", None, None)


def test_an_order_of_a_shown_item_closes_the_slate_as_a_purchase(
    conversation: Conversation, recommender: FilteringRecommender, demo: Shop
) -> None:
    """The verified customer orders the second suggestion in the shop after it was shown: their
    next turn closes the slate with a purchase at that position, whatever they pressed."""
    from datetime import UTC, datetime

    from core.shop.orders import JsonlOrders, Order

    tagging, outcomes = SlateTagging(recommender), ClosedSlates()
    orders = list(demo.orders.all())  # type: ignore[attr-defined]
    conversation = replace(conversation, services=replace(
        conversation.services, recommender=tagging, slates=outcomes,
        orders=JsonlOrders(orders)))
    shown = turn(conversation, "I need a waterproof jacket", customer_id="C0001")
    second = conversation.services.store.load("t:1").last_shown[1]
    template = next(o for o in orders if o.status == "processing")
    line = template.items[0].model_copy(update={
        "item_id": second.item_id, "quantity": 1, "unit_price": second.price})
    bought = Order.model_validate(template.model_dump() | {
        "id": "B-NEW-1", "customer_id": "C0001", "items": (line.model_dump(),),
        "total": second.price, "placed_at": datetime.now(UTC)})
    services = replace(conversation.services, orders=JsonlOrders([*orders, bought]))
    conversation = replace(conversation, services=services)
    assert shown.replies
    turn(conversation, "hi", customer_id="C0001")
    assert outcomes.closed == [("slate1", 2, "purchase")]
