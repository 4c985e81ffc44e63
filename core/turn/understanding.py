"""What the core knows about one customer message, whichever backend produced it."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.state.store import ConversationState


class Intent(StrEnum):
    RECOMMEND = "recommend"
    REFINE = "refine"
    PRODUCT_QUESTION = "product_question"
    ORDER_STATUS = "order_status"
    CANCEL_OR_CHANGE_ORDER = "cancel_or_change_order"
    RETURN_REFUND = "return_refund"
    PAYMENT = "payment"
    SHIPPING = "shipping"
    ACCOUNT = "account"
    COMPLAINT = "complaint"
    HUMAN_AGENT = "human_agent"
    GREETING = "greeting"
    OTHER = "other"


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Slots(BaseModel):
    """Details pulled out of one message. Empty fields mean "not mentioned"."""

    model_config = ConfigDict(frozen=True)

    category: str | None = None
    budget_min: float | None = None
    budget_max: float | None = None
    currency: str = "USD"
    attributes: tuple[str, ...] = ()  # wanted tags: "waterproof", "vegan", ...
    colors: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    product_id: str | None = None  # a catalog id when a product was mentioned
    order_id: str | None = None
    ordinal: int | None = None  # 1-based: "the second one" -> 2
    cheaper: bool = False  # "something cheaper"
    terms: tuple[str, ...] = ()  # content words of the request, for matching and evidence


class Understanding(BaseModel):
    model_config = ConfigDict(frozen=True)

    intent: Intent
    sentiment: Sentiment = Sentiment.NEUTRAL
    slots: Slots = Field(default_factory=Slots)
    confidence: float = 1.0
    source: str = "unknown"  # which backend produced it: "local", "llm", "keyword", ...
    # The message's pretrained sentence vector (`workers.encoder.pack_vector`), when the
    # understander computed one: the recommender reads it rather than encode the request
    # again. Left out of dumps and reprs: it is 2 KB of noise in a log line or a state.
    sentence_vector: str | None = Field(default=None, repr=False, exclude=True)


class Understander(Protocol):
    def understand(self, text: str, state: ConversationState) -> Understanding: ...
