"""Policy tables: (state, understanding) -> decision. Pure, so every case is one line."""

from __future__ import annotations

import pytest

from core.state.store import ConversationState, EscalationState, ProductRequest, ShownItem
from core.turn.policy import Action, PolicyConfig, decide, merge_request, resolve_item
from core.turn.understanding import Intent, Sentiment, Slots, Understanding

FRESH = ConversationState(conversation_id="c1", user_id="u1")
SHOWN = FRESH.model_copy(
    update={
        "last_shown": (
            ShownItem(item_id="P1", title="Storm Shell", price=120.0, position=1),
            ShownItem(item_id="P2", title="Trail Jacket", price=90.0, position=2),
            ShownItem(item_id="P3", title="City Parka", price=150.0, position=3),
        ),
        "shown": ("P1", "P2", "P3"),
        "request": ProductRequest(text="jacket", category="outerwear", attributes=("waterproof",)),
    }
)
ANGRY = FRESH.model_copy(update={"sentiments": ("negative", "neutral")})
ESCALATED = FRESH.model_copy(update={"escalation": EscalationState(status="open", ticket_id="T1")})
RATING = FRESH.model_copy(update={"escalation": EscalationState(status="awaiting_rating")})
# Asked for something, and nothing was shown (nothing matched, not even nearly).
ASKED = FRESH.model_copy(
    update={"request": ProductRequest(category="outerwear", attributes=("insulated",),
                                      budget_max=150.0)}
)


def u(
    intent: Intent,
    sentiment: Sentiment = Sentiment.NEUTRAL,
    confidence: float = 0.9,
    **slots: object,
) -> Understanding:
    return Understanding(
        intent=intent,
        sentiment=sentiment,
        slots=Slots(**slots),  # type: ignore[arg-type]
        confidence=confidence,
        source="test",
    )


TABLE = [
    # (name, state, understanding, expected action)
    ("hello", FRESH, u(Intent.GREETING), Action.SMALL_TALK),
    ("open request: history or popular", FRESH, u(Intent.RECOMMEND), Action.OPEN_REQUEST),
    ("request with category", FRESH, u(Intent.RECOMMEND, category="outerwear"), Action.RECOMMEND),
    (
        "request with words only",
        FRESH,
        u(Intent.RECOMMEND, terms=("gift", "dad", "hikes")),
        Action.RECOMMEND,
    ),
    (
        "refine with nothing shown is a fresh request",
        FRESH,
        u(Intent.REFINE, category="outerwear"),
        Action.RECOMMEND,
    ),
    ("refine after suggestions", SHOWN, u(Intent.REFINE, cheaper=True), Action.REFINE),
    (
        "cheaper after nothing was shown keeps the request",
        ASKED,
        u(Intent.REFINE, cheaper=True),
        Action.REFINE,
    ),
    (
        "product question by ordinal",
        SHOWN,
        u(Intent.PRODUCT_QUESTION, ordinal=2),
        Action.PRODUCT_QUESTION,
    ),
    ("product question about nothing", FRESH, u(Intent.PRODUCT_QUESTION), Action.CLARIFY),
    ("order status with id", FRESH, u(Intent.ORDER_STATUS, order_id="48213"), Action.ORDER_STATUS),
    ("order status without id", FRESH, u(Intent.ORDER_STATUS), Action.ORDER_STATUS),
    (
        "order change without id asks for it",
        FRESH,
        u(Intent.CANCEL_OR_CHANGE_ORDER),
        Action.CLARIFY,
    ),
    (
        "order change with id goes to a person",
        FRESH,
        u(Intent.CANCEL_OR_CHANGE_ORDER, order_id="48213"),
        Action.ESCALATE,
    ),
    ("shipping question", FRESH, u(Intent.SHIPPING), Action.POLICY_ANSWER),
    ("returns question", FRESH, u(Intent.RETURN_REFUND), Action.POLICY_ANSWER),
    ("payment question", FRESH, u(Intent.PAYMENT), Action.POLICY_ANSWER),
    ("account question", FRESH, u(Intent.ACCOUNT), Action.POLICY_ANSWER),
    ("asks for a person", FRESH, u(Intent.HUMAN_AGENT), Action.ESCALATE),
    (
        "single mild complaint is acknowledged",
        FRESH,
        u(Intent.COMPLAINT, Sentiment.NEGATIVE),
        Action.SMALL_TALK,
    ),
    (
        "negative sentiment persists",
        ANGRY,
        u(Intent.ORDER_STATUS, Sentiment.NEGATIVE),
        Action.ESCALATE,
    ),
    (
        "one negative turn alone does not escalate",
        FRESH,
        u(Intent.ORDER_STATUS, Sentiment.NEGATIVE),
        Action.ORDER_STATUS,
    ),
    ("frustrated payment problem", FRESH, u(Intent.PAYMENT, Sentiment.NEGATIVE), Action.ESCALATE),
    (
        "low confidence repeatedly",
        FRESH.model_copy(update={"low_confidence_streak": 2}),
        u(Intent.OTHER, confidence=0.2),
        Action.ESCALATE,
    ),
    ("low confidence once", FRESH, u(Intent.OTHER, confidence=0.2), Action.OUT_OF_SCOPE),
    (
        "suggestions rejected repeatedly",
        SHOWN.model_copy(update={"not_for_me_streak": 3}),
        u(Intent.REFINE),
        Action.ESCALATE,
    ),
    ("out of scope", FRESH, u(Intent.OTHER), Action.OUT_OF_SCOPE),
    (
        "while a person handles it, messages are relayed",
        ESCALATED,
        u(Intent.RECOMMEND),
        Action.RELAY,
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "understanding", "expected"), TABLE, ids=[row[0] for row in TABLE]
)
def test_decide_table(
    name: str, state: ConversationState, understanding: Understanding, expected: Action
) -> None:
    assert decide(state, understanding).action is expected


BUTTONS = [
    ("more like a shown item", SHOWN, "more:P2:2", Action.FEEDBACK),
    ("not for me", SHOWN, "skip:P1:1", Action.FEEDBACK),
    ("details", SHOWN, "details:P3:3", Action.FEEDBACK),
    ("item never shown", SHOWN, "more:P9:1", Action.UNKNOWN_BUTTON),
    ("garbage payload", SHOWN, "rm -rf /", Action.UNKNOWN_BUTTON),
    ("rating when asked", RATING, "csat:4", Action.RATE),
    ("rating out of range", RATING, "csat:9", Action.UNKNOWN_BUTTON),
    ("rating nobody asked for", FRESH, "csat:5", Action.UNKNOWN_BUTTON),
]


@pytest.mark.parametrize(
    ("name", "state", "payload", "expected"), BUTTONS, ids=[row[0] for row in BUTTONS]
)
def test_decide_buttons(
    name: str, state: ConversationState, payload: str, expected: Action
) -> None:
    assert decide(state, u(Intent.OTHER), button=payload).action is expected


def test_feedback_carries_item_kind_and_position() -> None:
    decision = decide(SHOWN, u(Intent.OTHER), button="skip:P1:1")
    assert (decision.item_id, decision.feedback, decision.position) == ("P1", "not_for_me", 1)


def test_cheaper_sets_budget_below_most_of_what_was_shown() -> None:
    decision = decide(SHOWN, u(Intent.REFINE, cheaper=True))
    assert decision.request is not None
    assert decision.request.budget_max == pytest.approx(119.99)  # shown: 90, 120, 150
    assert decision.request.category == "outerwear"  # carried over
    assert decision.request.attributes == ("waterproof",)


def test_cheaper_than_a_pointed_item() -> None:
    decision = decide(SHOWN, u(Intent.REFINE, cheaper=True, ordinal=2))
    assert decision.request is not None
    assert decision.request.budget_max == pytest.approx(89.99)


def test_refine_keeps_the_lower_of_two_budgets() -> None:
    request = merge_request(
        SHOWN.request.model_copy(update={"budget_max": 50.0}), u(Intent.REFINE, cheaper=True), SHOWN
    )
    assert request.budget_max == 50.0


def test_new_request_replaces_old_details() -> None:
    decision = decide(
        SHOWN, u(Intent.RECOMMEND, category="headphones-audio", attributes=("wireless",))
    )
    assert decision.request is not None
    assert decision.request.category == "headphones-audio"
    assert decision.request.attributes == ("wireless",)  # the jacket's "waterproof" is gone


def test_ordinals_resolve_against_last_shown() -> None:
    assert resolve_item(SHOWN, u(Intent.PRODUCT_QUESTION, ordinal=1)) == "P1"
    assert resolve_item(SHOWN, u(Intent.PRODUCT_QUESTION, ordinal=-1)) == "P3"
    assert resolve_item(SHOWN, u(Intent.PRODUCT_QUESTION, ordinal=7)) is None


def test_more_like_the_second_refines_around_it() -> None:
    decision = decide(SHOWN, u(Intent.REFINE, ordinal=2))
    assert decision.request is not None and decision.request.like_item_id == "P2"


def test_thresholds_are_configurable() -> None:
    strict = PolicyConfig(negative_needed=1)
    assert decide(FRESH, u(Intent.SHIPPING, Sentiment.NEGATIVE), config=strict).action is (
        Action.ESCALATE
    )


def test_escalation_records_a_reason() -> None:
    assert decide(FRESH, u(Intent.HUMAN_AGENT)).reason == "customer asked for a person"


# -- escalation triggers: each rule, its recorded reason, and where it must NOT fire --------------

CLAIMED = FRESH.model_copy(update={"escalation": EscalationState(status="claimed", ticket_id="T1")})
POSITIVE_THEN_NEUTRAL = FRESH.model_copy(update={"sentiments": ("positive", "neutral")})
CALM = FRESH.model_copy(update={"sentiments": ("neutral", "neutral")})
HAPPY = FRESH.model_copy(update={"sentiments": ("positive", "positive")})
COMPLAINED = FRESH.model_copy(update={"intents": ("complaint", "order_status")})
COMPLAINED_LONG_AGO = FRESH.model_copy(
    update={"intents": ("complaint", "greeting", "recommend", "refine")}
)
REJECTED_TWICE = SHOWN.model_copy(update={"not_for_me_streak": 2})
REJECTED_ONCE = SHOWN.model_copy(update={"not_for_me_streak": 1})

ESCALATIONS = [
    # (name, state, understanding, expected action, expected reason or None)
    (
        "asks for a person",
        FRESH,
        u(Intent.HUMAN_AGENT),
        Action.ESCALATE,
        "customer asked for a person",
    ),
    (
        "negative twice in three turns",
        ANGRY,
        u(Intent.SHIPPING, Sentiment.NEGATIVE),
        Action.ESCALATE,
        "negative sentiment persists",
    ),
    (
        "sentiment falls turn after turn",
        POSITIVE_THEN_NEUTRAL,
        u(Intent.ORDER_STATUS, Sentiment.NEGATIVE),
        Action.ESCALATE,
        "sentiment keeps getting worse",
    ),
    (
        "one negative after calm turns stays with the bot",
        CALM,
        u(Intent.ORDER_STATUS, Sentiment.NEGATIVE),
        Action.ORDER_STATUS,
        None,
    ),
    ("mild single complaint, neutral tone", FRESH, u(Intent.COMPLAINT), Action.SMALL_TALK, None),
    (
        "mild single complaint, negative tone",
        FRESH,
        u(Intent.COMPLAINT, Sentiment.NEGATIVE),
        Action.SMALL_TALK,
        None,
    ),
    (
        "single complaint after happy turns",
        HAPPY,
        u(Intent.COMPLAINT, Sentiment.NEGATIVE),
        Action.SMALL_TALK,
        None,
    ),
    (
        "single neutral complaint naming an order",
        FRESH,
        u(Intent.COMPLAINT, order_id="48213"),
        Action.SMALL_TALK,
        None,
    ),
    (
        "angry complaint about an order",
        FRESH,
        u(Intent.COMPLAINT, Sentiment.NEGATIVE, order_id="48213"),
        Action.ESCALATE,
        "complaint about an order: a person has to act on it",
    ),
    (
        "second complaint within the window",
        COMPLAINED,
        u(Intent.COMPLAINT),
        Action.ESCALATE,
        "repeated complaint",
    ),
    (
        "complaint long after the first one",
        COMPLAINED_LONG_AGO,
        u(Intent.COMPLAINT),
        Action.SMALL_TALK,
        None,
    ),
    (
        "payment dispute",
        FRESH,
        u(Intent.PAYMENT, terms=("chargeback", "card")),
        Action.ESCALATE,
        "payment dispute: only a person can handle it",
    ),
    (
        "charged twice, calmly",
        FRESH,
        u(Intent.PAYMENT, terms=("charged", "twice", "order")),
        Action.ESCALATE,
        "payment dispute: only a person can handle it",
    ),
    (
        "dispute words under another intent",
        FRESH,
        u(Intent.RETURN_REFUND, terms=("unauthorized", "payment")),
        Action.ESCALATE,
        "payment dispute: only a person can handle it",
    ),
    (
        "payment methods question stays with the bot",
        FRESH,
        u(Intent.PAYMENT, terms=("pay", "paypal")),
        Action.POLICY_ANSWER,
        None,
    ),
    (
        "frustrated payment problem",
        FRESH,
        u(Intent.PAYMENT, Sentiment.NEGATIVE),
        Action.ESCALATE,
        "payment problem reported with frustration",
    ),
    (
        "third message not understood",
        FRESH.model_copy(update={"low_confidence_streak": 2}),
        u(Intent.OTHER, confidence=0.1),
        Action.ESCALATE,
        "the assistant repeatedly did not understand",
    ),
    (
        "second message not understood",
        FRESH.model_copy(update={"low_confidence_streak": 1}),
        u(Intent.OTHER, confidence=0.1),
        Action.OUT_OF_SCOPE,
        None,
    ),
    (
        "text after three rejections",
        SHOWN.model_copy(update={"not_for_me_streak": 3}),
        u(Intent.REFINE, cheaper=True),
        Action.ESCALATE,
        "suggestions repeatedly rejected",
    ),
    (
        "claimed ticket: the bot stays silent",
        CLAIMED,
        u(Intent.HUMAN_AGENT, Sentiment.NEGATIVE),
        Action.RELAY,
        "a person is handling this conversation",
    ),
    (
        "after the hand-back the bot answers again",
        RATING,
        u(Intent.GREETING),
        Action.SMALL_TALK,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "understanding", "action", "reason"),
    ESCALATIONS,
    ids=[row[0] for row in ESCALATIONS],
)
def test_escalation_triggers(
    name: str,
    state: ConversationState,
    understanding: Understanding,
    action: Action,
    reason: str | None,
) -> None:
    decision = decide(state, understanding)
    assert decision.action is action
    if reason is not None:
        assert decision.reason == reason


ESCALATION_BUTTONS = [
    ("third 'not for me' goes to a person", REJECTED_TWICE, "skip:P1:1", Action.ESCALATE),
    ("second 'not for me' refines", REJECTED_ONCE, "skip:P1:1", Action.FEEDBACK),
    ("'more like this' after rejections", REJECTED_TWICE, "more:P2:2", Action.FEEDBACK),
    ("suggestion button while a person handles it", ESCALATED, "more:P1:1", Action.RELAY),
    ("rating button while a person handles it", CLAIMED, "csat:5", Action.RELAY),
]


@pytest.mark.parametrize(
    ("name", "state", "payload", "expected"),
    ESCALATION_BUTTONS,
    ids=[row[0] for row in ESCALATION_BUTTONS],
)
def test_escalation_buttons(
    name: str, state: ConversationState, payload: str, expected: Action
) -> None:
    assert decide(state, u(Intent.OTHER), button=payload).action is expected


def test_escalation_thresholds_come_from_config() -> None:
    complaint = u(Intent.COMPLAINT)
    assert decide(FRESH, complaint).action is Action.SMALL_TALK
    assert decide(FRESH, complaint, config=PolicyConfig(complaints_needed=1)).action is (
        Action.ESCALATE
    )
    falling = u(Intent.ORDER_STATUS, Sentiment.NEGATIVE)
    off = PolicyConfig(worsening_turns=0)
    assert decide(POSITIVE_THEN_NEUTRAL, falling, config=off).action is Action.ORDER_STATUS
    dispute = u(Intent.PAYMENT, terms=("chargeback",))
    assert decide(FRESH, dispute, config=PolicyConfig(dispute_terms=())).action is (
        Action.POLICY_ANSWER
    )
    lenient = PolicyConfig(not_for_me_turns=5)
    assert decide(REJECTED_TWICE, u(Intent.OTHER), "skip:P1:1", lenient).action is (Action.FEEDBACK)
    patient = PolicyConfig(negative_window=2, negative_needed=3)
    assert decide(ANGRY, u(Intent.SHIPPING, Sentiment.NEGATIVE), config=patient).action is (
        Action.POLICY_ANSWER
    )


def test_cheaper_after_nothing_was_shown_keeps_what_was_asked() -> None:
    decision = decide(ASKED, u(Intent.REFINE, cheaper=True))
    assert decision.request is not None
    assert decision.request.category == "outerwear"
    assert decision.request.attributes == ("insulated",) and decision.request.budget_max == 150.0
