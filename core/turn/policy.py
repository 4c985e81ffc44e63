"""What to do next: a pure function of the conversation state and the understood message.

No I/O, no clock, no randomness: `decide` is tested with tables of (state, understanding) ->
decision. The LLM and the local model only fill an `Understanding`; this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from core.state.store import ConversationState, ProductRequest
from core.turn.understanding import Intent, Sentiment, Understanding


class Action(StrEnum):
    RECOMMEND = "recommend"
    REFINE = "refine"
    PRODUCT_QUESTION = "product_question"
    ORDER_STATUS = "order_status"
    POLICY_ANSWER = "policy_answer"
    ESCALATE = "escalate"
    CLARIFY = "clarify"
    OPEN_REQUEST = "open_request"  # suggestions with nothing to go on but who is asking
    SMALL_TALK = "small_talk"
    OUT_OF_SCOPE = "out_of_scope"
    FEEDBACK = "feedback"  # a suggestion button was pressed
    RELAY = "relay"  # a person is handling the conversation: pass the message on
    RATE = "rate"  # the customer rated the support they got
    UNKNOWN_BUTTON = "unknown_button"


# Policy topics the knowledge base answers, by intent.
POLICY_TOPICS: dict[Intent, str] = {
    Intent.SHIPPING: "shipping",
    Intent.RETURN_REFUND: "returns",
    Intent.PAYMENT: "payment",
    Intent.ACCOUNT: "account",
}

CLARIFY_REQUEST = "What are you shopping for? A product type, who it's for, or a budget helps."

# Button payload prefixes; payloads are short so every platform can carry them.
FEEDBACK_KINDS = {"more": "more_like_this", "skip": "not_for_me", "details": "details"}


@dataclass(frozen=True)
class PolicyConfig:
    """Escalation thresholds; operators tune them through settings (CONCIERGE_POLICY_*)."""

    negative_window: int = 3  # recent customer turns looked at
    negative_needed: int = 2  # negative turns within the window (current one included)
    worsening_turns: int = 3  # sentiment falling turn after turn this long, ending negative
    low_confidence: float = 0.45
    low_confidence_turns: int = 3
    not_for_me_turns: int = 3
    complaint_window: int = 4  # recent customer turns looked at for complaints
    complaints_needed: int = 2  # complaints within the window (current one included)
    # Words that make a message something only a person can handle (a payment dispute).
    dispute_terms: tuple[str, ...] = (
        "dispute",
        "chargeback",
        "charge back",
        "fraud",
        "fraudulent",
        "unauthorized",
        "unauthorised",
        "charged twice",
        "double charged",
        "stolen card",
    )


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    request: ProductRequest | None = None  # for recommend / refine
    item_id: str | None = None
    order_id: str | None = None
    topic: str | None = None
    question: str | None = None  # for clarify: what to ask
    feedback: str | None = None  # for feedback: more_like_this / not_for_me / details
    position: int | None = None
    rating: int | None = None
    notes: tuple[str, ...] = field(default=())


def decide(
    state: ConversationState,
    understanding: Understanding,
    button: str | None = None,
    config: PolicyConfig = PolicyConfig(),
) -> Decision:
    if state.escalation.status in ("open", "claimed"):
        # The assistant stays silent: buttons pressed meanwhile go to the person as well.
        return Decision(Action.RELAY, "a person is handling this conversation")
    if button is not None:
        return _decide_button(state, button, config)

    escalation = _escalation_reason(state, understanding, config)
    if escalation is not None:
        return Decision(Action.ESCALATE, escalation)

    intent, slots = understanding.intent, understanding.slots
    if intent is Intent.REFINE and not state.last_shown and _too_vague(state.request):
        intent = Intent.RECOMMEND  # nothing to refine yet: treat it as a fresh request
    if intent is Intent.RECOMMEND:
        request = merge_request(ProductRequest(), understanding, state)
        if _too_vague(request):
            # "What would you recommend for me?", "surprise me": from the customer's history,
            # or what is popular plus one question (the turn knows which it has).
            return Decision(Action.OPEN_REQUEST, "open request: no product words", request=request,
                            question=CLARIFY_REQUEST)
        return Decision(Action.RECOMMEND, "customer asked for suggestions", request=request)
    if intent is Intent.REFINE:
        request = merge_request(state.request, understanding, state)
        pointed = resolve_item(state, understanding) if slots.ordinal is not None else None
        return Decision(
            Action.REFINE, "customer adjusted the suggestions", request=request, item_id=pointed
        )
    if intent is Intent.PRODUCT_QUESTION:
        item_id = resolve_item(state, understanding)
        if item_id is None:
            return Decision(
                Action.CLARIFY,
                "product question without a known product",
                question="Which product do you mean? You can name it or say 'the first one'.",
            )
        return Decision(Action.PRODUCT_QUESTION, "question about a product", item_id=item_id)
    if intent is Intent.ORDER_STATUS:
        return Decision(Action.ORDER_STATUS, "order status asked", order_id=slots.order_id)
    if intent is Intent.CANCEL_OR_CHANGE_ORDER:
        if slots.order_id is None:
            return Decision(
                Action.CLARIFY,
                "order change without an order number",
                question="Which order is it? Please send the order number (5 digits).",
            )
        return Decision(Action.ESCALATE, "order change needs a person", order_id=slots.order_id)
    if intent in POLICY_TOPICS:
        return Decision(Action.POLICY_ANSWER, "policy question", topic=POLICY_TOPICS[intent])
    if intent is Intent.COMPLAINT:
        return Decision(Action.SMALL_TALK, "single mild complaint: acknowledge", topic="complaint")
    if intent is Intent.GREETING:
        return Decision(Action.SMALL_TALK, "greeting", topic="greeting")
    return Decision(Action.OUT_OF_SCOPE, "outside what the store assistant does")


def merge_request(
    base: ProductRequest, understanding: Understanding, state: ConversationState
) -> ProductRequest:
    """The product request after this message: new details override, others carry over."""
    slots = understanding.slots
    budget_max = slots.budget_max if slots.budget_max is not None else base.budget_max
    if slots.cheaper and state.last_shown:
        # "Cheaper" means below the item pointed at, or below most of what was shown.
        pointed = resolve_item(state, understanding) if slots.ordinal is not None else None
        prices = sorted(item.price for item in state.last_shown if pointed in (None, item.item_id))
        below = round(prices[len(prices) // 2] - 0.01, 2)
        budget_max = below if budget_max is None else min(budget_max, below)
    like_item_id = base.like_item_id
    if slots.ordinal is not None and understanding.intent is Intent.REFINE:
        like_item_id = resolve_item(state, understanding) or like_item_id
    words = " ".join(slots.terms)
    return ProductRequest(
        text=" ".join(part for part in (words, base.text) if part).strip()[:300],
        category=slots.category or base.category,
        budget_min=slots.budget_min if slots.budget_min is not None else base.budget_min,
        budget_max=budget_max,
        attributes=_union(base.attributes, slots.attributes),
        colors=slots.colors or base.colors,
        sizes=slots.sizes or base.sizes,
        like_item_id=like_item_id,
    )


def resolve_item(state: ConversationState, understanding: Understanding) -> str | None:
    """The product a message refers to: an explicit product, an ordinal, or the only one shown."""
    slots = understanding.slots
    if slots.product_id is not None:
        return slots.product_id
    if slots.ordinal is not None and state.last_shown:
        index = slots.ordinal - 1 if slots.ordinal > 0 else len(state.last_shown) + slots.ordinal
        if 0 <= index < len(state.last_shown):
            return state.last_shown[index].item_id
        return None
    if len(state.last_shown) == 1:
        return state.last_shown[0].item_id
    return None


def _escalation_reason(
    state: ConversationState, understanding: Understanding, config: PolicyConfig
) -> str | None:
    """Why this message should go to a person, or None. Each rule names its reason."""
    intent, slots = understanding.intent, understanding.slots
    if intent is Intent.HUMAN_AGENT:
        return "customer asked for a person"
    if _mentions(slots.terms, config.dispute_terms):
        return "payment dispute: only a person can handle it"
    negative = understanding.sentiment is Sentiment.NEGATIVE
    sentiments = (*state.sentiments, understanding.sentiment.value)
    recent = sentiments[-config.negative_window :]
    if negative and recent.count(Sentiment.NEGATIVE.value) >= config.negative_needed:
        return "negative sentiment persists"
    if negative and _worsening(sentiments, config.worsening_turns):
        return "sentiment keeps getting worse"
    if intent is Intent.COMPLAINT:
        window = (*state.intents, intent.value)[-config.complaint_window :]
        if window.count(Intent.COMPLAINT.value) >= config.complaints_needed:
            return "repeated complaint"
        if negative and slots.order_id is not None:
            return "complaint about an order: a person has to act on it"
    if intent is Intent.PAYMENT and negative:
        return "payment problem reported with frustration"
    low = understanding.confidence < config.low_confidence
    if low and state.low_confidence_streak + 1 >= config.low_confidence_turns:
        return "the assistant repeatedly did not understand"
    if state.not_for_me_streak >= config.not_for_me_turns:
        return "suggestions repeatedly rejected"
    return None


def _worsening(sentiments: tuple[str, ...], turns: int) -> bool:
    """Each of the last `turns` sentiments lower than the one before (needs turns >= 2)."""
    if turns < 2 or len(sentiments) < turns:
        return False
    order = {Sentiment.NEGATIVE.value: 0, Sentiment.NEUTRAL.value: 1, Sentiment.POSITIVE.value: 2}
    values = [order.get(s, 1) for s in sentiments[-turns:]]
    return all(later < earlier for earlier, later in pairwise(values))


def _mentions(terms: tuple[str, ...], phrases: tuple[str, ...]) -> bool:
    words = f" {' '.join(terms).lower()} "
    return any(f" {phrase} " in words for phrase in phrases)


def _decide_button(state: ConversationState, payload: str, config: PolicyConfig) -> Decision:
    kind, _, rest = payload.partition(":")
    if kind in FEEDBACK_KINDS:
        item_id, _, position = rest.partition(":")
        if item_id and item_id in state.shown and position.isdigit():
            rejected = FEEDBACK_KINDS[kind] == "not_for_me"
            if rejected and state.not_for_me_streak + 1 >= config.not_for_me_turns:
                return Decision(Action.ESCALATE, "suggestions repeatedly rejected")
            return Decision(
                Action.FEEDBACK,
                f"button {kind}",
                item_id=item_id,
                feedback=FEEDBACK_KINDS[kind],
                position=int(position),
            )
    rating_asked = state.escalation.status == "awaiting_rating"
    if kind == "csat" and rest.isdigit() and 1 <= int(rest) <= 5 and rating_asked:
        return Decision(Action.RATE, "customer rated support", rating=int(rest))
    return Decision(Action.UNKNOWN_BUTTON, f"button not understood or expired: {payload[:40]!r}")


def _too_vague(request: ProductRequest) -> bool:
    return not (request.category or request.attributes or request.text or request.like_item_id)


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))
