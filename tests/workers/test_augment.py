"""Paraphrases of the taxonomy examples: rules always, the LLM when configured; every one
checked, none near a held-out message."""

from __future__ import annotations

import json
import random

from core.llm.client import LlmClient, LlmConfig
from core.turn.taxonomy import DEFAULT_PATH, load_labelled, load_taxonomy
from tests.conftest import StandIn
from workers.nlu.augment import Augmenter, llm_asker, normalised, rule_paraphrases, similarity

EXAMPLES = [
    ("where is my order 48213?", "order_status"),
    ("I need a waterproof jacket under $100", "recommend"),
    ("can you cancel my order", "cancel_or_change_order"),
]


def test_rules_keep_the_words_that_matter() -> None:
    found = rule_paraphrases("I need a waterproof jacket under $100", random.Random(1))
    assert len(set(found)) >= 4
    assert all("100" in text for text in found)  # amounts and numbers are never rewritten
    assert "i'm looking for a waterproof jacket under $100" in found


def test_augmenter_adds_new_checked_examples_and_avoids_heldout() -> None:
    heldout = ["hi, where is my order 48213?"]
    augmenter = Augmenter(EXAMPLES, heldout, per_example=3, seed=2)
    added = augmenter.augment()
    texts = [normalised(text) for text, _ in added]
    assert len(texts) == len(set(texts)) and len(added) <= 9 and len(added) >= 6
    assert not {normalised(text) for text, _ in EXAMPLES} & set(texts)
    assert all(similarity(text, heldout[0]) < 0.8 for text in texts)
    intents = {intent for _, intent in added}
    assert intents == {"order_status", "recommend", "cancel_or_change_order"}


def test_the_taxonomy_paraphrases_stay_apart_from_the_heldout_messages() -> None:
    examples = load_taxonomy().intent_examples()
    heldout = [m.text for m in load_labelled(DEFAULT_PATH.parent / "heldout.jsonl")]
    added = Augmenter(examples, heldout, per_example=2).augment()
    assert len(added) > len(examples)
    held = {normalised(text) for text in heldout}
    assert not held & {normalised(text) for text, _ in added}


def test_llm_paraphrases_are_checked_before_they_are_kept(stand_in: StandIn) -> None:
    answer = {"paraphrases": [
        "any news on order 48213?",          # kept
        "where is my order 99999?",          # an order number it was not given: refused
        "where is my order 48213?",          # a copy of an example: refused
        "x" * 300,                           # too long: refused
    ]}
    stand_in.script = [f"ok:{json.dumps(answer)}"]
    client = LlmClient(LlmConfig(base_url=stand_in.base_url, model="stand-in", timeout_s=2.0,
                                 retries=0))
    augmenter = Augmenter(EXAMPLES[:1], (), per_example=2)
    added = augmenter.augment(llm_asker(client))
    assert added[0] == ("any news on order 48213?", "order_status")
    assert "where is my order 99999?" not in [text for text, _ in added]
    assert augmenter.rejected["invented a number"] == 1
    assert augmenter.rejected["duplicate"] >= 1 and augmenter.rejected["empty or too long"] == 1
    assert "order_status" in stand_in.requests[0]["messages"][0]["content"]
