"""Ticket summaries for support agents: an LLM's briefing when one is configured.

The model only fills a schema (one field of text, shown to agents, never acted upon); personal
data is masked before the transcript leaves the process, the names on the verified customer's
record included when the summarizer can look them up; on any failure the template summary
from `core.handover.escalation.summarize` is used and the reason logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from core.handover.escalation import summarize, trend
from core.handover.tickets.store import Ticket
from core.infra.logs import event
from core.llm.client import LlmClient, LlmError
from core.llm.pii import mask_pii
from core.llm.templates import render_prompt

log = logging.getLogger(__name__)

PROMPT = "summarize_ticket_v1"
TRANSCRIPT_LINES = 12
LINE_CHARS = 300
SUMMARY_CHARS = 400


class Briefing(BaseModel):
    summary: str = Field(min_length=1, max_length=2000)


@dataclass(frozen=True)
class TicketSummary:
    """A briefing and where it came from: the LLM's (validated), or the template's."""

    text: str
    source: Literal["llm", "template"]
    fallback_reason: str | None = None  # why the template was used: the LLM error's reason


class LlmSummarizer:
    """`summarizer(ticket)` -> a short briefing; the template's when the LLM gives none.

    `brief(ticket)` says which of the two it is (`TicketSummary.source`). `names_of(customer_id)`
    gives the names on a verified customer's record, masked as [name] in the transcript sent."""

    def __init__(
        self, client: LlmClient, names_of: Callable[[str], Sequence[str]] | None = None
    ) -> None:
        self.client = client
        self.names_of = names_of

    def __call__(self, ticket: Ticket) -> str:
        return self.brief(ticket).text

    def brief(self, ticket: Ticket) -> TicketSummary:
        prompt = render_prompt(
            PROMPT,
            reason=ticket.reason,
            trend=trend(ticket.sentiment_trend),
            transcript=transcript(ticket, self.customer_names(ticket)),
        )
        try:
            briefing = self.client.complete_json(
                [{"role": "user", "content": prompt}], Briefing, name="ticket_summary"
            )
        except LlmError as exc:
            event(log, "summary.fallback", logging.WARNING, ticket=ticket.id, reason=exc.reason)
            return TicketSummary(summarize(ticket), "template", exc.reason)
        text = " ".join(briefing.summary.split())
        if not text:
            event(log, "summary.fallback", logging.WARNING, ticket=ticket.id, reason="blank")
            return TicketSummary(summarize(ticket), "template", "blank")
        clipped = text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"
        return TicketSummary(f"{clipped} (AI summary; reason: {ticket.reason})", "llm")

    def customer_names(self, ticket: Ticket) -> Sequence[str]:
        """The names on the record of the ticket's verified customer; () when none is known."""
        if self.names_of is None or ticket.verified_customer is None:
            return ()
        return self.names_of(ticket.verified_customer)


def transcript(ticket: Ticket, names: Sequence[str] = ()) -> str:
    """The last lines of the conversation with personal data (and `names`) masked, one
    'role: text' a line."""
    lines = []
    for entry in ticket.transcript[-TRANSCRIPT_LINES:]:
        if entry.role == "note" or entry.private:
            continue  # agents' notes are not the customer's story; order details stay here
        text = mask_pii(entry.text, names).text[:LINE_CHARS].replace("\n", " ")
        lines.append(f"{entry.role}: {text}")
    return "\n".join(lines) or "(empty)"
