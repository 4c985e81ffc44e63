"""More ways of saying each taxonomy example: paraphrases for training the understanding model.

Two sources. Rules (always available): politeness and greeting wrappers, contractions, common
synonym swaps, lower case without punctuation, and one transposed letter (people type fast).
The configured LLM (when one is set): asked for paraphrases of each intent's examples in one
JSON object. Every candidate is checked before it is kept: not empty, not too long, no longer
than the order numbers and amounts it was given (an LLM must not invent an order number),
not already an example, not a near copy of a held-out message (the evaluation stays honest),
and deduplicated.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from core.infra.logs import event

log = logging.getLogger(__name__)

MAX_CHARS = 200
NEAR_COPY = 0.8  # token Jaccard similarity at which a paraphrase counts as a held-out message

PREFIXES = ("hi, ", "hello! ", "hey ", "please ", "excuse me, ", "quick question: ")
SUFFIXES = (" please", " thanks", ", thank you", " asap", "?")
SWAPS: tuple[tuple[str, str], ...] = (
    (r"\bi need\b", "i'm looking for"),
    (r"\blooking for\b", "searching for"),
    (r"\bi want\b", "i'd like"),
    (r"\bcan you\b", "could you"),
    (r"\bwhere is\b", "where's"),
    (r"\bi am\b", "i'm"),
    (r"\bdo not\b", "don't"),
    (r"\bis not\b", "isn't"),
    (r"\bhelp me\b", "can you help me"),
    (r"\bshow me\b", "can i see"),
    (r"\bcheap\b", "inexpensive"),
    (r"\bbuy\b", "get"),
    (r"\bgift\b", "present"),
    (r"\bcancel\b", "call off"),
    (r"\bmoney back\b", "refund"),
)
_WORD = re.compile(r"[a-z0-9']+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def similarity(first: str, second: str) -> float:
    """Token Jaccard similarity of two texts (0 to 1)."""
    a, b = set(_WORD.findall(first.lower())), set(_WORD.findall(second.lower()))
    return len(a & b) / len(a | b) if a and b else 0.0


def rule_paraphrases(text: str, rng: random.Random) -> list[str]:
    """Candidate rewrites of `text` that keep its meaning (and so its intent)."""
    lowered = text.lower()
    found = [rng.choice(PREFIXES) + lowered, text.rstrip("?!. ") + rng.choice(SUFFIXES)]
    for pattern, replacement in SWAPS:
        if re.search(pattern, lowered):
            found.append(re.sub(pattern, replacement, lowered, count=1))
    found.append(" ".join(_WORD.findall(lowered)))  # typed fast: no capitals, no punctuation
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if long_words:
        i = rng.choice(long_words)
        j = rng.randrange(1, len(words[i]) - 2)
        word = words[i]
        words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
        found.append(" ".join(words))
    return found


class Paraphrases(BaseModel):
    paraphrases: list[str] = Field(max_length=40)


Ask = Callable[[str, Sequence[str], int], Sequence[str]]  # (intent, examples, n) -> candidates


def llm_asker(client: object) -> Ask:
    """Paraphrases from the configured LLM (an `LlmClient`), one call per intent."""
    from core.llm.client import LlmClient
    from core.llm.templates import render_prompt

    assert isinstance(client, LlmClient)

    def ask(intent: str, examples: Sequence[str], n: int) -> Sequence[str]:
        prompt = render_prompt("paraphrase_examples_v1", intent=intent, count=n,
                               examples="\n".join(f"- {e}" for e in examples))
        answer = client.complete_json([{"role": "user", "content": prompt}], Paraphrases,
                                      name="paraphrases")
        return answer.paraphrases

    return ask


@dataclass
class Augmenter:
    """Keeps the candidates that pass every check; counts why the others did not."""

    examples: Sequence[tuple[str, str]]  # (text, intent) the model already trains on
    heldout: Sequence[str] = ()
    per_example: int = 2
    seed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def augment(self, ask: Ask | None = None) -> list[tuple[str, str]]:
        """New (text, intent) pairs: up to `per_example` for each example."""
        rng = random.Random(self.seed)
        seen = {normalised(text) for text, _ in self.examples}
        held = [normalised(text) for text in self.heldout]
        by_intent: dict[str, list[str]] = {}
        for text, intent in self.examples:
            by_intent.setdefault(intent, []).append(text)
        added: list[tuple[str, str]] = []
        for intent, texts in by_intent.items():
            wanted = self.per_example * len(texts)
            candidates: list[tuple[str, str]] = []  # (candidate, the example it came from)
            if ask is not None:
                try:
                    everything = " ".join(texts)  # numbers may come only from these
                    candidates += [(c, everything) for c in ask(intent, texts, wanted)]
                except Exception as error:  # the LLM is optional: fall back to the rules
                    event(log, "nlu.augment_llm_failed", logging.WARNING, intent=intent,
                          error=type(error).__name__)
            for text in texts:
                options = rule_paraphrases(text, rng)
                rng.shuffle(options)
                candidates += [(option, text) for option in options]
            kept = 0
            for candidate, source in candidates:
                if kept >= wanted:
                    break
                reason = self._refusal(candidate, source, seen, held)
                if reason:
                    self.rejected[reason] = self.rejected.get(reason, 0) + 1
                    continue
                seen.add(normalised(candidate))
                added.append((candidate.strip(), intent))
                kept += 1
        return added

    def _refusal(self, candidate: str, source: str, seen: set[str], held: Iterable[str]) -> str:
        text = candidate.strip()
        key = normalised(text)
        if not key or len(text) > MAX_CHARS:
            return "empty or too long"
        if key in seen:
            return "duplicate"
        if source and set(_NUMBER.findall(text)) - set(_NUMBER.findall(source)):
            return "invented a number"
        if any(key == h or similarity(key, h) >= NEAR_COPY for h in held):
            return "near a held-out message"
        return ""
