"""Micro-batching of the local model: batched answers equal one-by-one answers, calls from many
threads share forwards, errors reach only their caller, a lone call is not held, close is clean.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.state.store import ConversationState
from workers import minilm
from workers.nlu.batcher import BatcherClosed, MicroBatcher
from workers.nlu.model import NluModel, embed
from workers.nlu.understander import LocalUnderstander

STATE = ConversationState(conversation_id="batching")
MESSAGES = [
    "hi",
    "where is my order 48213?",
    "I need a waterproof jacket under $100 for hiking in the mountains next weekend, "
    "ideally something packable that fits in a small day pack",
    "this is the third time I'm asking!!",
    "what is your return policy?",
    "do you have wireless headphones?",
    "thanks",
    "can I talk to a person please, your bot is not helping at all",
]
# Batched and single forwards run the same arithmetic on differently shaped matrices, so the
# sums may be taken in another order (bfloat16 on CPUs fast at it): equal within this much.
CONFIDENCE_TOLERANCE = 0.01


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Polls `condition` (a liveness bound only: a working batcher takes milliseconds)."""
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class GatedCompute:
    """A compute function whose first call, once started, waits until `expected` more calls
    are queued, so a test knows the next batch holds them all; it records each batch and fails
    on "bad"."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.batches: list[list[str]] = []
        self.batcher: MicroBatcher[str, str] | None = None
        self.computing = threading.Event()

    def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        if not self.computing.is_set() and self.batcher is not None:
            self.computing.set()
            queued = self.batcher._queue  # the batcher's own queue: what waits for the next batch
            wait_until(lambda: queued.qsize() >= self.expected, f"{self.expected} calls queued")
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]


def gated_batcher(
    expected: int, max_wait_s: float = 0.0, max_batch: int = 64
) -> tuple[MicroBatcher[str, str], GatedCompute]:
    compute = GatedCompute(expected)
    batcher: MicroBatcher[str, str] = MicroBatcher(compute, max_batch, max_wait_s)
    compute.batcher = batcher
    return batcher, compute


def submit_in_threads(
    batcher: MicroBatcher[str, str], compute: GatedCompute, first: str, items: Sequence[str]
) -> dict[str, str | BaseException]:
    """`first` submitted alone, then `items` from a thread each while `first` is computed."""
    answers: dict[str, str | BaseException] = {}

    def call(item: str) -> None:
        try:
            answers[item] = batcher.submit(item)
        except Exception as exc:  # what the caller got is what is checked
            answers[item] = exc

    opener = threading.Thread(target=call, args=(first,))
    opener.start()
    assert compute.computing.wait(30)
    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in [opener, *threads]:
        thread.join(60)
    return answers


def test_calls_from_threads_share_one_computation() -> None:
    items = [f"m{n}" for n in range(12)]
    batcher, compute = gated_batcher(expected=len(items))
    answers = submit_in_threads(batcher, compute, "first", items)
    assert answers == {item: item.upper() for item in ["first", *items]}
    assert compute.batches[0] == ["first"]
    assert sorted(compute.batches[1]) == sorted(items)  # all twelve in one computation
    assert batcher.stats().largest == len(items)
    batcher.close()


def test_an_error_reaches_only_its_caller() -> None:
    items = ["a", "bad", "b", "c"]
    batcher, compute = gated_batcher(expected=len(items))
    answers = submit_in_threads(batcher, compute, "first", items)
    assert isinstance(answers["bad"], ValueError)
    assert {k: v for k, v in answers.items() if k != "bad"} == {
        "first": "FIRST", "a": "A", "b": "B", "c": "C"
    }
    assert sorted(compute.batches[1]) == sorted(items)  # tried together, then each alone
    assert batcher.submit("after") == "AFTER"  # the thread lives on
    batcher.close()


def test_a_wrong_number_of_results_is_an_error_not_a_mix_up() -> None:
    batcher: MicroBatcher[str, str] = MicroBatcher(lambda items: ["only one"], max_batch=8)
    assert batcher.submit("x") == "only one"  # one item, one result: fine
    batcher.close()
    short: MicroBatcher[str, str] = MicroBatcher(lambda items: [], max_batch=8)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        short.submit("x")
    short.close()


def test_a_lone_call_is_not_held_for_companions() -> None:
    # Companions may be waited for an hour: a call that comes alone must not wait at all.
    batcher: MicroBatcher[str, str] = MicroBatcher(
        lambda items: [i.upper() for i in items], max_batch=64, max_wait_s=3600.0
    )
    for item in ("one", "two", "three"):
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(batcher.submit, item).result(timeout=30) == item.upper()
    batcher.close()


def test_a_lone_call_after_a_busy_spell_is_not_held() -> None:
    # Six calls queued behind a first: they fill a batch (no wait: it is full); then a call
    # comes alone to an empty queue and must go through at once, not wait for companions.
    batcher, compute = gated_batcher(expected=6, max_wait_s=3600.0, max_batch=6)
    answers = submit_in_threads(batcher, compute, "first", [f"m{n}" for n in range(6)])
    assert len(answers) == 7 and len(compute.batches) == 2
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(batcher.submit, "alone").result(timeout=30) == "ALONE"
    batcher.close()


def test_close_answers_what_is_queued_then_refuses() -> None:
    items = [f"m{n}" for n in range(5)]
    batcher, compute = gated_batcher(expected=len(items))
    with ThreadPoolExecutor(len(items) + 1) as pool:
        first = pool.submit(batcher.submit, "first")
        assert compute.computing.wait(30)
        queued = [pool.submit(batcher.submit, item) for item in items]
        wait_until(lambda: batcher._queue.qsize() >= len(items), "calls queued")
        batcher.close()
        assert first.result(timeout=30) == "FIRST"
        assert [f.result(timeout=30) for f in queued] == [item.upper() for item in items]
    assert batcher._thread is not None and not batcher._thread.is_alive()
    with pytest.raises(BatcherClosed):
        batcher.submit("late")
    batcher.close()  # twice is fine


# -- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(nlu_model_dir: Path) -> NluModel:
    return NluModel.load(nlu_model_dir)


def test_padding_leaves_embeddings_unchanged(model: NluModel) -> None:
    """A message padded to the longest of its batch gets the vector it gets alone: padding is
    masked out of attention and out of the mean."""
    alone = np.stack([embed([text], model.config.layers)[0] for text in MESSAGES])
    batched = embed(MESSAGES, model.config.layers)
    tokenizer, _ = minilm.load_encoder()
    ids, mask = minilm.token_ids(tokenizer, MESSAGES)
    assert int(mask.sum(1).min()) < ids.shape[1]  # the batch does pad the short messages
    cosine = (alone * batched).sum(1)  # both L2-normalised
    assert cosine.min() > 0.999, cosine


def test_batched_answers_equal_one_by_one(model: NluModel) -> None:
    alone = [model.predict([text])[0] for text in MESSAGES]
    batched = model.predict(MESSAGES)
    for text, (intent, sentiment), (b_intent, b_sentiment) in zip(
        MESSAGES, alone, batched, strict=True
    ):
        assert b_intent.label == intent.label, text
        assert b_intent.confidence == pytest.approx(intent.confidence, abs=CONFIDENCE_TOLERANCE)
        assert (b_sentiment is None) == (sentiment is None)
        if sentiment is not None and b_sentiment is not None:
            assert b_sentiment.label == sentiment.label, text
            assert b_sentiment.confidence == pytest.approx(
                sentiment.confidence, abs=CONFIDENCE_TOLERANCE
            )


def test_understander_batches_concurrent_turns(model: NluModel) -> None:
    plain = LocalUnderstander(model)
    batching = LocalUnderstander(model, batch_max=32, batch_wait_s=0.005)
    assert plain.batcher is None and batching.batcher is not None
    texts = MESSAGES * 4
    expected = [plain.understand(text, STATE) for text in texts]
    start = threading.Barrier(len(texts))

    def understand(text: str) -> object:
        start.wait()
        return batching.understand(text, STATE)

    with ThreadPoolExecutor(len(texts)) as pool:
        got = list(pool.map(understand, texts))
    for text, want, answer in zip(texts, expected, got, strict=True):
        assert answer.intent == want.intent, text  # type: ignore[attr-defined]
        assert answer.sentiment == want.sentiment, text  # type: ignore[attr-defined]
        assert answer.slots == want.slots, text  # type: ignore[attr-defined]
        assert answer.confidence == pytest.approx(  # type: ignore[attr-defined]
            want.confidence, abs=CONFIDENCE_TOLERANCE
        )
    stats = batching.batcher.stats()
    assert stats.items == len(texts)
    assert stats.largest > 1  # 32 threads released at once did share forwards
    batching.close()
    with pytest.raises(BatcherClosed):
        batching.understand("hello", STATE)
    assert plain.understand("", STATE).confidence == 1.0  # empty text never reaches the model
