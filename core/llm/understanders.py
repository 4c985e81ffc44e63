"""Understanders that ask an LLM, and the cascade that asks it only when the local model is unsure.

Both are pure of torch: the local model arrives as any object with `understand(text, state)`.
The LLM only fills a schema (intent, sentiment, confidence); slots come from the deterministic
extractor, and every failure falls back to the local answer with the reason logged. What it is
sent is masked (`core.llm.pii`), the names on a known customer's record included, and private
turns (an order's details, the account) are left out of the history it sees.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.infra import metrics
from core.infra.logs import event
from core.llm.client import LlmClient, LlmError
from core.llm.pii import mask_pii
from core.llm.templates import render_prompt
from core.state.store import ConversationState
from core.turn.slots import SlotVocabulary, VocabularySource, extract_slots
from core.turn.taxonomy import Taxonomy
from core.turn.understanding import Intent, Sentiment, Understander, Understanding

log = logging.getLogger(__name__)

PROMPT = "understand_v1"
HISTORY_TURNS = 4
MESSAGE_CHARS = 1500  # what the LLM sees of one message; longer text is cut
EXAMPLES_PER_INTENT = 3

# Text that tries to instruct the assistant. The prompt tells the LLM to classify it as `other`;
# this check makes sure of it whatever the model answers (the LLM proposes, code decides).
INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|above|"
    r"previous|everything)\b"
    r"|\b(?:system|developer)\s*(?:prompt|message|instructions?)\b"
    r"|^\s*(?:system|assistant|developer)\s*:"
    r"|\byou are now\b|\bact as (?:an? )?(?:ai|assistant|admin|developer|system)\b"
    r"|\b(?:respond|reply|answer|output)\b.{0,30}\b(?:json|intent\s*[=:]|confidence)\b"
    r"|\bset (?:the )?intent\b|\bjailbreak\b|\bDAN\b",
    re.IGNORECASE,
)


def looks_like_injection(text: str) -> bool:
    return INJECTION.search(text) is not None


class Verdict(BaseModel):
    """What the LLM may say about a message; anything else it writes is ignored."""

    model_config = ConfigDict(extra="ignore")

    intent: str
    sentiment: Sentiment
    confidence: float = Field(ge=0.0, le=1.0)


def verdict_schema(intent_names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": list(intent_names)},
            "sentiment": {"type": "string", "enum": [s.value for s in Sentiment]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["intent", "sentiment", "confidence"],
        "additionalProperties": False,
    }


def to_intent(name: str) -> Intent:
    """The core's intent for a taxonomy name; names the core has no action for are `other`."""
    try:
        return Intent(name)
    except ValueError:
        return Intent.OTHER


def understanding_prompt(
    taxonomy: Taxonomy, text: str, state: ConversationState, names: Sequence[str] = ()
) -> str:
    """The understanding prompt for `text`, its personal data already masked by the caller.

    The history leaves private turns out and is masked here, `names` (the customer's) included."""
    intents = "\n".join(f"- {spec.name}: {spec.description}" for spec in taxonomy.intents)
    examples = "\n".join(
        f'"{example}" -> {spec.name}'
        for spec in taxonomy.intents
        for example in spec.examples[:EXAMPLES_PER_INTENT]
    )
    turns = [turn for turn in state.transcript if not turn.private][-HISTORY_TURNS:]
    history = "\n".join(
        f"{turn.role}: {_quote(mask_pii(turn.text, names).text[:300])}" for turn in turns
    )
    return render_prompt(
        PROMPT,
        intents=intents,
        examples=examples,
        history=history or "(none)",
        message=_quote(text[:MESSAGE_CHARS]),
    )


def _quote(text: str) -> str:
    # The message sits between markers; it must not be able to close them.
    return " ".join(text.replace("<<<", "< < <").replace(">>>", "> > >").split())


class LlmUnderstander:
    """Intent and sentiment from an LLM; slots deterministic; the fallback answers on failure.

    `names_of(customer_id)` gives the names on a verified customer's record, masked as [name]
    in everything sent; without it (or for an unknown customer) only the patterns are masked."""

    source = "llm"

    def __init__(
        self,
        client: LlmClient,
        taxonomy: Taxonomy,
        fallback: Understander,
        vocabulary: VocabularySource | None = None,
        names_of: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self.client = client
        self.names_of = names_of
        self.taxonomy = taxonomy
        self.fallback = fallback
        self.vocabulary: VocabularySource = (
            vocabulary if vocabulary is not None else SlotVocabulary()
        )
        self.schema = verdict_schema(taxonomy.intent_names)
        self.fallbacks = 0

    def understand(self, text: str, state: ConversationState) -> Understanding:
        return self.understand_or(text, state, None)

    def understand_or(
        self, text: str, state: ConversationState, fallback_answer: Understanding | None
    ) -> Understanding:
        """As `understand`, reusing `fallback_answer` (already computed) if the LLM fails."""
        slots = extract_slots(text, self.vocabulary.current())
        if looks_like_injection(text):
            event(log, "understand.injection", chars=len(text))
            return Understanding(intent=Intent.OTHER, sentiment=Sentiment.NEUTRAL, slots=slots,
                                 confidence=0.99, source="guard")
        if not text.strip():
            return Understanding(intent=Intent.OTHER, slots=slots, confidence=1.0, source="guard")
        names = self.customer_names(state)
        masked = mask_pii(text, names)
        prompt = understanding_prompt(self.taxonomy, masked.text, state, names)
        try:
            verdict = self.client.complete_json(
                [{"role": "user", "content": prompt}], Verdict, self.schema, name="understanding"
            )
            if verdict.intent not in self.taxonomy.intent_names:
                raise LlmError("schema", f"unknown intent {verdict.intent[:40]!r}")
        except LlmError as exc:
            self.fallbacks += 1
            metrics.record_llm_fallback(exc.reason)
            event(log, "understand.llm_fallback", logging.WARNING, reason=exc.reason)
            if fallback_answer is not None:
                return fallback_answer
            return self.fallback.understand(text, state)
        if masked.kinds:
            event(log, "understand.pii_masked", kinds=",".join(sorted(set(masked.kinds))))
        return Understanding(
            intent=to_intent(verdict.intent),
            sentiment=verdict.sentiment,
            slots=slots,
            confidence=verdict.confidence,
            source=self.source,
        )


    def customer_names(self, state: ConversationState) -> Sequence[str]:
        """The names on the record of the customer verified in `state`; () when none is."""
        if self.names_of is None or state.customer_id is None:
            return ()
        return self.names_of(state.customer_id)


@dataclass
class CascadeStats:
    messages: int = 0
    llm_calls: int = 0

    @property
    def saved(self) -> int:
        """LLM calls the local model made unnecessary."""
        return self.messages - self.llm_calls


class CascadeUnderstander:
    """The local model answers; the LLM is asked only when local confidence is below threshold."""

    def __init__(self, local: Understander, llm: LlmUnderstander, threshold: float) -> None:
        self.local = local
        self.llm = llm
        self.threshold = threshold
        self.stats = CascadeStats()

    def understand(self, text: str, state: ConversationState) -> Understanding:
        self.stats.messages += 1
        first = self.local.understand(text, state)
        if first.confidence >= self.threshold:
            return first
        self.stats.llm_calls += 1
        answer = self.llm.understand_or(text, state, first)
        # The local model's encode of the message is still good for the recommender.
        return answer.model_copy(update={"sentence_vector": first.sentence_vector})

