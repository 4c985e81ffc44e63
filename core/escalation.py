"""The contract for handing a conversation to a person and back."""

from __future__ import annotations

from typing import Protocol

from core.state import ConversationState


class Escalations(Protocol):
    def open(self, state: ConversationState, reason: str) -> str:
        """Open a ticket for this conversation; returns its id."""
        ...

    def relay(self, state: ConversationState, text: str) -> None:
        """Pass a customer message to the person handling the ticket."""
        ...

    def rate(self, state: ConversationState, rating: int) -> None:
        """Store the customer's 1-5 rating of the support they got."""
        ...
