"""What crosses the boundary between a chat platform and the conversation core.

An adapter parses a platform event into an `Incoming`, hands it to `Conversation.handle`
together with an `Outbox`, and renders every `Reply` that arrives in that outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Longest customer message the core processes; longer text is cut and the customer told so.
MAX_TEXT_CHARS = 4000


@dataclass(frozen=True)
class Button:
    """A choice offered under a reply. `payload` comes back verbatim when it is pressed."""

    label: str
    payload: str


@dataclass(frozen=True)
class Incoming:
    """One customer event: a text message or a pressed button."""

    conversation_id: str
    user_id: str
    text: str = ""
    thread_id: str | None = None
    button: str | None = None  # payload of the pressed button, if any
    message_id: str | None = None  # the platform's id, used to drop duplicate deliveries
    platform: str = "terminal"
    # A store customer the adapter itself vouches for: only the terminal chat, whose user runs
    # it on the shop's own machine (`--user`). Chat platforms leave it None: there a customer
    # is known only through a verified link (`core.identity`).
    customer_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One message to the customer. Adapters degrade buttons to what the platform can show."""

    text: str
    buttons: tuple[Button, ...] = ()
    thread_id: str | None = None
    conversation_id: str | None = None
    # Personal (orders, the account): in a group chat the adapter sends it by direct message
    # and leaves a short notice in the group.
    private: bool = False


class Outbox(Protocol):
    """Where replies go. Adapters implement it; tests collect into a list."""

    def send(self, reply: Reply) -> None: ...


@dataclass
class CollectingOutbox:
    """An outbox that keeps replies in order: for tests and for adapters that send afterwards."""

    replies: list[Reply] = field(default_factory=list)

    def send(self, reply: Reply) -> None:
        self.replies.append(reply)

    def pop(self) -> Reply:
        """The oldest reply not yet taken."""
        return self.replies.pop(0)
