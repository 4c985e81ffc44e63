"""Explanations phrased by an LLM from a suggestion's evidence; `core.turn.explanation.explain`
checks every sentence it writes before a customer sees it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.llm.client import LlmClient
from core.llm.templates import render_prompt
from core.turn.recommendation import Evidence

PROMPT = "explain_suggestion_v2"


class Phrasing(BaseModel):
    sentence: str = Field(max_length=600)


class LlmPhraser:
    """An OpenAI-compatible LLM phrases the evidence; `explain` checks every sentence it writes."""

    def __init__(self, client: LlmClient) -> None:
        self.client = client

    def phrase(self, evidence: Evidence) -> str:
        facts = evidence.model_dump_json(exclude_none=True, exclude_defaults=True)
        prompt = render_prompt(PROMPT, evidence_json=facts)
        messages = [{"role": "user", "content": prompt}]
        return self.client.complete_json(messages, Phrasing, name="phrasing").sentence
