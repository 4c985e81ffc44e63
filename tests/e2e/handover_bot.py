"""A real bot process for the hand-over tests: `python -m tests.e2e.handover_bot KIND [ARGS]`.

KIND is terminal, telegram or slack; ARGS go to that adapter's `main()`.

It runs the adapter's own `main()` (settings from the environment, the real store, support desk,
delivery loops and platform code); only understanding and recommendation are small
deterministic implementations of core's protocols, so the test states what each message means.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from bots import wiring
from core.infra.settings import Settings
from core.state.store import ConversationState
from core.turn.recommendation import RecommendationRequest, Suggestion
from core.turn.understanding import Intent, Sentiment, Understanding

ANGRY_WORDS = ("!", "ridiculous", "never", "late", "terrible")


class Words:
    """Intent and sentiment from a few words; enough to drive a hand-over."""

    def understand(self, text: str, state: ConversationState) -> Understanding:
        lowered = text.lower()
        angry = any(word in lowered for word in ANGRY_WORDS)
        sentiment = Sentiment.NEGATIVE if angry else Sentiment.NEUTRAL
        if any(word in lowered for word in ("person", "human", "agent")):
            intent = Intent.HUMAN_AGENT
        elif "ridiculous" in lowered or "terrible" in lowered:
            intent = Intent.COMPLAINT
        elif "order" in lowered:
            intent = Intent.ORDER_STATUS
        elif lowered.startswith(("hi", "hello")):
            intent = Intent.GREETING
        else:
            intent = Intent.OTHER
        return Understanding(intent=intent, sentiment=sentiment, confidence=0.9, source="words")


class NoSuggestions:
    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        return []


def main(argv: Sequence[str]) -> int:
    def words(
        settings: Settings, backend: object = None, vocabulary: object = None,
        database: object = None,
    ) -> Words:
        return Words()

    def nothing(settings: Settings, catalog: object = None) -> NoSuggestions:
        return NoSuggestions()

    wiring.build_understander = words
    wiring.build_recommender = nothing
    kind, rest = argv[0], list(argv[1:])
    if kind not in ("terminal", "telegram", "slack"):
        raise SystemExit(f"unknown adapter {kind!r}")
    modules = {"terminal": "bots.terminal", "telegram": "bots.telegram", "slack": "bots.slack.app"}
    adapter = importlib.import_module(modules[kind])
    return int(adapter.main(rest))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
