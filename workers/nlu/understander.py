"""`LocalUnderstander`: core's `Understander` backed by the trained local model."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from core.infra.logs import event
from core.llm.understanders import to_intent
from core.state.store import ConversationState
from core.turn.slots import SlotVocabulary, VocabularySource, extract_slots
from core.turn.understanding import Intent, Sentiment, Understanding
from workers.nlu.model import NluModel

log = logging.getLogger(__name__)

MAX_CHARS = 2000  # the encoder reads 128 tokens anyway; longer text only costs n-gram time


class LocalUnderstander:
    source = "local"

    def __init__(self, model: NluModel, vocabulary: VocabularySource | None = None) -> None:
        self.model = model
        self.vocabulary: VocabularySource = (
            vocabulary if vocabulary is not None else SlotVocabulary()
        )

    @classmethod
    def load(
        cls, directory: Path, vocabulary: VocabularySource | None = None, threads: int = 1
    ) -> LocalUnderstander:
        started = time.perf_counter()
        torch.set_num_threads(max(1, threads))
        understander = cls(NluModel.load(directory), vocabulary)
        event(log, "nlu.loaded", directory=str(directory),
              ms=round((time.perf_counter() - started) * 1000, 1))
        return understander

    def understand(self, text: str, state: ConversationState) -> Understanding:
        slots = extract_slots(text, self.vocabulary.current())
        if not text.strip():
            return Understanding(intent=Intent.OTHER, slots=slots, confidence=1.0,
                                 source=self.source)
        intent, sentiment = self.model.predict([text[:MAX_CHARS]])[0]
        return Understanding(
            intent=to_intent(intent.label),
            sentiment=Sentiment(sentiment.label) if sentiment else Sentiment.NEUTRAL,
            slots=slots,
            confidence=round(intent.confidence, 4),
            source=self.source,
        )
