"""Handing a conversation to a person and back.

`Escalations` is what a turn calls (open a ticket, relay a customer message, store a rating).
`SupportDesk` implements it over a `TicketStore`, a `DeliveryQueue` and the conversation
`StateStore`, and adds what the agent side calls: claim, reply, resolve, hand back, and the SLA
sweep. Every call works from any process that reaches the same storage: the customer's bot, the
agent console and the agent-side chat app each hold their own `SupportDesk`.

Turns change conversation state in `core.turn.conversation.advance`. An agent's action is not a
turn, so it changes only the escalation part of the state, under the conversation's lock, in
`_hand_over` below; the ticket itself changes through `TicketStore.update`.
"""

from __future__ import annotations

import logging
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.handover.deliveries.store import (
    AGENTS_TOPIC,
    DeadLetter,
    Delivery,
    DeliveryKind,
    DeliveryQueue,
    customer_topic,
)
from core.handover.tickets.store import (
    CLOSED,
    Ticket,
    TicketEntry,
    TicketStatus,
    TicketStore,
    new_ticket_id,
)
from core.infra import metrics
from core.infra.logs import event
from core.state.store import ConversationState, EscalationState, StateStore
from core.turn import replies
from core.turn.understanding import Understanding

log = logging.getLogger(__name__)

TREND_TURNS = 6  # customer sentiments shown with a ticket
SUMMARY_TURNS = 4  # transcript lines quoted in a template summary


class Escalations(Protocol):
    def open(
        self,
        state: ConversationState,
        reason: str,
        text: str = "",
        understanding: Understanding | None = None,
    ) -> str:
        """Open a ticket for this conversation (or return its open one); returns its id.

        `state` is the state before this turn; `text` and `understanding` are the message that
        led to the hand-over, so the ticket holds it too.
        """
        ...

    def relay(self, state: ConversationState, text: str) -> None:
        """Pass a customer message to the person handling the ticket."""
        ...

    def rate(self, state: ConversationState, rating: int) -> None:
        """Store the customer's 1-5 rating of the support they got."""
        ...


class Refused(RuntimeError):
    """An agent action that does not apply; the message says why, for the agent."""


@dataclass
class SupportDesk:
    tickets: TicketStore
    queue: DeliveryQueue
    states: StateStore
    sla_s: float = 300.0  # an unclaimed ticket older than this gets an update and a reminder
    notify_agents: bool = True  # put ticket news on the agents' topic (a chat desk reads it)
    lock_timeout_s: float = 30.0
    clock: Callable[[], float] = time.time

    # -- the customer's side: called inside a turn, with the conversation's lock held ---------

    def open(
        self,
        state: ConversationState,
        reason: str,
        text: str = "",
        understanding: Understanding | None = None,
    ) -> str:
        now = self.clock()
        existing = self.tickets.active_for(state.conversation_id)
        if existing is not None:  # a crash after opening left the state behind: reuse it
            if text:
                self.tickets.append(existing.id, TicketEntry(role="customer", text=text, at=now))
            return existing.id
        transcript = [
            TicketEntry(role=turn.role, text=turn.text, at=turn.at, private=turn.private)
            for turn in state.transcript
        ]
        sentiments, intents = list(state.sentiments), list(state.intents)
        if text:
            transcript.append(TicketEntry(role="customer", text=text, at=now))
        if understanding is not None and text:
            sentiments.append(understanding.sentiment.value)
            intents.append(understanding.intent.value)
        ticket = Ticket(
            id=new_ticket_id(now),
            conversation_id=state.conversation_id,
            customer=state.user_id or "unknown",
            verified_customer=state.customer_id,
            platform=state.platform,
            reason=reason,
            sentiment_trend=tuple(sentiments[-TREND_TURNS:]),
            intents=tuple(dict.fromkeys(intents)),
            products_shown=state.shown,
            transcript=tuple(transcript),
            created_at=now,
            updated_at=now,
        )
        self.tickets.create(ticket)
        self._to_agents(ticket, "ticket_opened", f"{ticket.id}:opened", summarize(ticket))
        event(
            log,
            "ticket.opened",
            ticket=ticket.id,
            conversation=ticket.conversation_id,
            platform=ticket.platform,
            reason=reason,
        )
        metrics.record_escalation_opened(reason)
        return ticket.id

    def relay(self, state: ConversationState, text: str) -> None:
        ticket_id = state.escalation.ticket_id
        if ticket_id is None or not text:
            return
        self.tickets.append(ticket_id, TicketEntry(role="customer", text=text, at=self.clock()))
        # The turn number makes the id unique per message and stable if the turn is retried.
        self._to_agents(
            (ticket_id, state.conversation_id),
            "customer_message",
            f"{ticket_id}:c{state.turns}",
            text,
        )

    def rate(self, state: ConversationState, rating: int) -> None:
        ticket_id = state.escalation.ticket_id
        if ticket_id is None:
            return
        now = self.clock()

        def rated(current: Ticket) -> Ticket | None:
            if current.status not in CLOSED or current.rating is not None:
                return None
            return current.model_copy(update={"rating": rating, "rated_at": now, "updated_at": now})

        ticket = self.tickets.update(ticket_id, rated)
        if ticket is not None:
            self._to_agents(
                ticket,
                "ticket_changed",
                f"{ticket_id}:rated",
                f"The customer rated this conversation {rating}/5.",
            )
            event(log, "ticket.rated", ticket=ticket_id, rating=rating)

    # -- the agent's side ----------------------------------------------------------------------

    def claim(self, ticket_id: str, agent: str, agent_name: str | None = None) -> Ticket:
        now = self.clock()

        def claimed(current: Ticket) -> Ticket | None:
            if current.status == "claimed" and current.agent == agent:
                return current
            if current.status != "open":
                return None
            return current.model_copy(
                update={
                    "status": "claimed",
                    "agent": agent,
                    "agent_name": agent_name,
                    "claimed_at": now,
                    "updated_at": now,
                }
            )

        before = self._ticket(ticket_id)
        ticket = self.tickets.update(ticket_id, claimed)
        if ticket is None:
            after = self._ticket(ticket_id)
            if after.status == "claimed":
                raise Refused(f"{ticket_id} is already claimed by {after.agent}.")
            raise Refused(f"{ticket_id} is {after.status.replace('_', ' ')}.")
        if before.status == "open":
            self._hand_over(
                ticket, EscalationState(status="claimed", ticket_id=ticket.id, reason=ticket.reason)
            )
            self._to_customer(ticket, f"{ticket_id}:claimed", replies.agent_joined(agent_name))
            self._to_agents(
                ticket,
                "ticket_changed",
                f"{ticket_id}:claimed:{agent}",
                f"Claimed by {agent_name or agent}.",
                author=agent,
            )
            event(log, "ticket.claimed", ticket=ticket_id, agent=agent)
        return ticket

    def agent_reply(
        self,
        ticket_id: str,
        agent: str,
        text: str,
        message_id: str | None = None,
        agent_name: str | None = None,
    ) -> Delivery:
        """Relay an agent's message to the customer; replying to an unclaimed ticket claims it.

        `message_id` (the agent-side platform's id) makes a redelivered agent event harmless.
        """
        text = text.strip()
        if not text:
            raise Refused("There is no text to send.")
        ticket = self._ticket(ticket_id)
        if not ticket.active:
            raise Refused(
                f"{ticket_id} is {ticket.status.replace('_', ' ')}; "
                "the customer is back with the assistant."
            )
        if ticket.status == "open":
            ticket = self.claim(ticket_id, agent, agent_name)
        elif ticket.agent != agent:
            event(log, "ticket.second_agent", ticket=ticket_id, agent=agent, owner=ticket.agent)
        if agent == ticket.agent:
            agent_name = agent_name or ticket.agent_name
        delivery_id = f"{ticket_id}:a:{message_id or uuid.uuid4().hex}"
        delivery = self._delivery(
            ticket, delivery_id, replies.agent_message(agent_name, text), author=agent
        )
        if self.queue.put(delivery):
            self.tickets.append(
                ticket_id, TicketEntry(role="agent", text=text, at=self.clock(), author=agent)
            )
        return delivery

    def resolve(self, ticket_id: str, agent: str) -> Ticket:
        return self._close(ticket_id, agent, "resolved", replies.RESOLVED)

    def hand_back(self, ticket_id: str, agent: str) -> Ticket:
        return self._close(ticket_id, agent, "handed_back", replies.HANDED_BACK)

    def link(self, ticket_id: str, agent_thread: str) -> Ticket:
        """Remember where the agents discuss this ticket (a chat thread reference)."""
        ticket = self.tickets.update(
            ticket_id, lambda t: t.model_copy(update={"agent_thread": agent_thread})
        )
        if ticket is None:
            raise Refused(f"There is no ticket {ticket_id}.")
        return ticket

    def note(self, ticket_id: str, agent: str, text: str) -> None:
        """An internal note on the ticket; the customer never sees it."""
        text = text.strip()
        if not text:
            raise Refused("There is no text to keep.")
        self._ticket(ticket_id)  # Refused when there is no such ticket
        self.tickets.append(
            ticket_id, TicketEntry(role="note", text=text, at=self.clock(), author=agent)
        )

    def undelivered(self, letter: DeadLetter) -> None:
        """A reply the customer did not get (or may not have): a note on the ticket, and news
        on the agents' topic, so a person knows to follow up. Called by the delivery loop."""
        delivery = letter.delivery
        if delivery.kind != "reply" or delivery.ticket_id is None:
            return  # news for agents that agents did not get: the dead letter is all there is
        said = _clip(delivery.text, 300)
        text = f"The customer may not have this reply ({letter.reason}): “{said}”"
        self.note(delivery.ticket_id, "concierge", text)
        self._to_agents(
            (delivery.ticket_id, delivery.conversation_id),
            "undelivered",
            f"{delivery.id}:undelivered",
            text,
        )
        event(log, "ticket.undelivered", logging.WARNING, ticket=delivery.ticket_id,
              delivery=delivery.id)

    def sweep(self) -> list[Ticket]:
        """Open tickets nobody claimed within the SLA: tell the customer honestly, remind agents.

        Safe to run in every process: each ticket is reminded once (a conditional update).
        """
        now = self.clock()
        reminded: list[Ticket] = []
        for ticket in self.tickets.list(("open",)):
            if ticket.reminded_at is not None or now - ticket.created_at < self.sla_s:
                continue

            def remind(current: Ticket) -> Ticket | None:
                if current.status != "open" or current.reminded_at is not None:
                    return None
                return current.model_copy(update={"reminded_at": now, "updated_at": now})

            updated = self.tickets.update(ticket.id, remind)
            if updated is None:
                continue
            waited = max(1, round((now - ticket.created_at) / 60))
            self._to_customer(updated, f"{ticket.id}:sla", replies.still_waiting(waited))
            self._to_agents(
                updated,
                "reminder",
                f"{ticket.id}:reminder",
                f"Nobody has claimed {ticket.id} for {waited} min ({ticket.reason}).",
            )
            event(log, "ticket.sla_missed", logging.WARNING, ticket=ticket.id, minutes=waited)
            reminded.append(updated)
        return reminded

    # -- internals ------------------------------------------------------------------------------

    def _close(self, ticket_id: str, agent: str, status: TicketStatus, text: str) -> Ticket:
        ticket = self._ticket(ticket_id)
        if not ticket.active:
            raise Refused(f"{ticket_id} is already {ticket.status.replace('_', ' ')}.")
        # The conversation first: if this process stops right after, the customer is already
        # back with the assistant, and repeating the action finishes the ticket.
        self._hand_over(
            ticket,
            EscalationState(status="awaiting_rating", ticket_id=ticket.id, reason=ticket.reason),
        )
        now = self.clock()

        def closed(current: Ticket) -> Ticket | None:
            if not current.active:
                return None
            return current.model_copy(
                update={
                    "status": status,
                    "agent": current.agent or agent,
                    "closed_at": now,
                    "updated_at": now,
                }
            )

        done = self.tickets.update(ticket_id, closed)
        if done is None:
            raise Refused(f"{ticket_id} was closed by someone else just now.")
        self._to_customer(done, f"{ticket_id}:closed", text, replies.csat_buttons())
        word = "Resolved" if status == "resolved" else "Handed back to the assistant"
        self._to_agents(
            done, "ticket_changed", f"{ticket_id}:closed", f"{word} by {agent}.", author=agent
        )
        event(log, f"ticket.{status}", ticket=ticket_id, agent=agent)
        metrics.record_escalation_resolved(status)
        return done

    def _hand_over(self, ticket: Ticket, escalation: EscalationState) -> None:
        """Set the conversation's escalation state (only if it still concerns this ticket)."""
        with self.states.lock(ticket.conversation_id, self.lock_timeout_s):
            state = self.states.load(ticket.conversation_id)
            current = state.escalation.ticket_id
            if current not in (None, ticket.id) or state.escalation == escalation:
                return
            changes: dict[str, object] = {"escalation": escalation}
            if escalation.status == "awaiting_rating":
                # A person dealt with it: earlier frustration should not re-escalate at once.
                changes |= {"sentiments": (), "low_confidence_streak": 0, "not_for_me_streak": 0}
            self.states.save(state.model_copy(update=changes))

    def _ticket(self, ticket_id: str) -> Ticket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise Refused(f"There is no ticket {ticket_id}.")
        return ticket

    def _delivery(
        self,
        ticket: Ticket,
        delivery_id: str,
        text: str,
        buttons: tuple[tuple[str, str], ...] = (),
        author: str | None = None,
    ) -> Delivery:
        return Delivery(
            id=delivery_id,
            topic=customer_topic(ticket.platform, ticket.conversation_id),
            kind="reply",
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            text=text,
            buttons=buttons,
            author=author,
            created_at=self.clock(),
        )

    def _to_customer(
        self, ticket: Ticket, delivery_id: str, text: str, buttons: tuple[tuple[str, str], ...] = ()
    ) -> None:
        if self.queue.put(self._delivery(ticket, delivery_id, text, buttons)):
            self.tickets.append(
                ticket.id, TicketEntry(role="assistant", text=text, at=self.clock())
            )

    def _to_agents(
        self,
        ticket: Ticket | tuple[str, str],  # or (ticket id, conversation id)
        kind: DeliveryKind,
        delivery_id: str,
        text: str,
        author: str | None = None,
    ) -> None:
        if not self.notify_agents:
            return
        ticket_id, conversation_id = (
            (ticket.id, ticket.conversation_id) if isinstance(ticket, Ticket) else ticket
        )
        self.queue.put(
            Delivery(
                id=delivery_id,
                topic=AGENTS_TOPIC,
                kind=kind,
                conversation_id=conversation_id,
                ticket_id=ticket_id,
                text=text,
                author=author,
                created_at=self.clock(),
            )
        )


def summarize(ticket: Ticket) -> str:
    """A template summary for agents: who, why, what happened, what the customer said last."""
    said = [e.text for e in ticket.transcript if e.role == "customer"]
    lines = [
        f"{ticket.who} on {ticket.platform}: {ticket.reason}.",
        f"Sentiment: {trend(ticket.sentiment_trend)}. "
        f"Intents: {', '.join(ticket.intents) or 'none'}.",
    ]
    if ticket.products_shown:
        lines.append(f"Products shown: {', '.join(ticket.products_shown[-5:])}.")
    if said:
        lines.append(f"Last said: “{_clip(single_line(said[-1]), 200)}”")
    return "\n".join(lines)


def trend(sentiments: tuple[str, ...]) -> str:
    """'neutral → negative → negative (worsening)'."""
    if not sentiments:
        return "unknown"
    score = {"negative": -1, "neutral": 0, "positive": 1}
    values = [score.get(s, 0) for s in sentiments]
    arrow = " → ".join(sentiments)
    if len(values) > 1 and values[-1] < values[0]:
        return f"{arrow} (worsening)"
    if len(values) > 1 and values[-1] > values[0]:
        return f"{arrow} (improving)"
    return arrow


def last_turns(ticket: Ticket, count: int = SUMMARY_TURNS) -> list[str]:
    """The last transcript lines as 'role: text', for the agent side."""
    names = {"customer": "Customer", "assistant": "Assistant", "agent": "Agent", "note": "Note"}
    return [
        f"{names[e.role]}: {_clip(single_line(e.text), 300)}" for e in ticket.transcript[-count:]
    ]


LINE_BREAK_SHOWN = " ⏎ "
_JOINERS = "\u200c\u200d"  # format characters that emoji and some scripts need


def single_line(text: str) -> str:
    """A customer's text as one line for the agents' side: line breaks shown as ⏎, control and
    format characters (a terminal's escape sequences, right-to-left overrides) dropped.
    Wherever agents read a transcript, each line then starts with what the code wrote
    ("Customer:", "Reason:"), never with a line the customer typed to look like one."""
    parts = (_visible(part).strip() for part in text.splitlines())
    return LINE_BREAK_SHOWN.join(part for part in parts if part)


def _visible(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(
        " " if c.isspace() else c
        for c in text
        if c.isspace() or c in _JOINERS or unicodedata.category(c) not in ("Cc", "Cf")
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
