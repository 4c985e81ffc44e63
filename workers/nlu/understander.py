"""`LocalUnderstander`: core's `Understander` backed by the trained local model.

Concurrent turns (different conversations, in the adapters' worker threads) can share one
encoder forward through a `MicroBatcher`: the model's work per message falls several-fold when
messages go through it together, and a lone message is not delayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from core.infra.logs import event
from core.llm.understanders import to_intent
from core.state.store import ConversationState
from core.turn.slots import SlotVocabulary, VocabularySource, extract_slots
from core.turn.understanding import Intent, Sentiment, Understanding
from workers.encoder import pack_vector
from workers.minilm import Precision
from workers.nlu.batcher import MicroBatcher
from workers.nlu.model import NluModel

log = logging.getLogger(__name__)

MAX_CHARS = 2000  # the encoder reads 128 tokens anyway; longer text only costs n-gram time



class LocalUnderstander:
    source = "local"

    def __init__(
        self,
        model: NluModel,
        vocabulary: VocabularySource | None = None,
        batch_max: int = 1,
        batch_wait_s: float = 0.002,
    ) -> None:
        """`batch_max` > 1: concurrent calls share one forward of up to that many messages,
        waiting up to `batch_wait_s` for companions while calls arrive together."""
        self.model = model
        self.vocabulary: VocabularySource = (
            vocabulary if vocabulary is not None else SlotVocabulary()
        )
        # Only the encoder forward is batched: the n-grams and heads, plain Python and a few
        # small products, stay with each caller, so the batching thread does little else than
        # keep the encoder busy while the callers' Python runs beside it.
        self.batcher: MicroBatcher[str, np.ndarray] | None = (
            MicroBatcher(_rows(model), batch_max, batch_wait_s, name="nlu-batcher")
            if batch_max > 1
            else None
        )

    @classmethod
    def load(
        cls,
        directory: Path,
        vocabulary: VocabularySource | None = None,
        threads: int = 1,
        batch_max: int = 1,
        batch_wait_s: float = 0.002,
        precision: Precision = "float",
    ) -> LocalUnderstander:
        """`precision`: the encoder's arithmetic, float or int8 (the settings'
        `encoder_precision`)."""
        started = time.perf_counter()
        torch.set_num_threads(max(1, threads))
        understander = cls(NluModel.load(directory, precision), vocabulary, batch_max,
                           batch_wait_s)
        event(log, "nlu.loaded", directory=str(directory), batch_max=batch_max,
              precision=precision, ms=round((time.perf_counter() - started) * 1000, 1))
        return understander

    def close(self) -> None:
        """Answer the messages already waiting for a batch, then stop its thread."""
        if self.batcher is not None:
            self.batcher.close()

    def understand(self, text: str, state: ConversationState) -> Understanding:
        slots = extract_slots(text, self.vocabulary.current())
        if not text.strip():
            return Understanding(intent=Intent.OTHER, slots=slots, confidence=1.0,
                                 source=self.source)
        text = text[:MAX_CHARS]
        ngrams = self.model.ngrams(text)
        dense = self.batcher.submit(text) if self.batcher else self.model.embed([text])[0]  # (E,)
        intent, sentiment = self.model.classify(dense[None, :], [ngrams])[0]
        sentence = self.model.sentence_vector(dense)
        return Understanding(
            intent=to_intent(intent.label),
            sentiment=Sentiment(sentiment.label) if sentiment else Sentiment.NEUTRAL,
            slots=slots,
            confidence=round(intent.confidence, 4),
            source=self.source,
            sentence_vector=pack_vector(sentence) if sentence is not None else None,
        )


def _rows(model: NluModel) -> Callable[[Sequence[str]], list[np.ndarray]]:
    """The encoder's features of a batch, one row per message."""

    def rows(texts: Sequence[str]) -> list[np.ndarray]:
        return list(model.embed(texts))

    return rows
