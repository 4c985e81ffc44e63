"""What identity and data rights need from storage: the protocol and its records.

A platform user (`telegram:<id>`, `slack:<team>:<user>`) is linked to a store customer only by
proof: a link token the shop issued, or a code sent to the customer's e-mail. The store
database keeps the links durably (`core.shopdb.identity` implements this protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from core.shop.customers import Customer

LinkMethod = Literal["link", "email"]


class Link(BaseModel):
    """A platform user proved to be a store customer."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    customer_id: str
    method: LinkMethod
    linked_at: datetime


class IssuedToken(BaseModel):
    model_config = ConfigDict(frozen=True)

    nonce: str
    customer_id: str
    expires_at: datetime
    used_at: datetime | None = None


class PendingCode(BaseModel):
    """The one e-mail code a platform user may enter (its keyed hash, never the code)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    customer_id: str
    code_hash: str
    expires_at: datetime
    attempts: int = 0


class IdentityStore(Protocol):
    def link_of(self, user_id: str) -> Link | None: ...

    def save_link(self, link: Link) -> None:
        """Link the user (replacing any earlier link of that user)."""
        ...

    def remove_link(self, user_id: str) -> bool: ...

    def links_of_customer(self, customer_id: str) -> list[Link]: ...

    def add_token(self, token: IssuedToken) -> None: ...

    def token(self, nonce: str) -> IssuedToken | None: ...

    def use_token(self, nonce: str, now: datetime) -> bool:
        """Mark the token used; False when it was used already or has expired (atomic)."""
        ...

    def pending_code(self, user_id: str) -> PendingCode | None: ...

    def save_code(self, code: PendingCode) -> None:
        """Replace the user's pending code."""
        ...

    def count_code_attempt(self, user_id: str) -> None: ...

    def drop_code(self, user_id: str) -> None: ...

    def note_attempt(self, user_id: str, kind: str, at: datetime) -> None: ...

    def attempts_since(
        self, user_id: str, since: datetime, kind: str | None = None
    ) -> list[datetime]:
        """Times of the user's attempts (of `kind`, or all) since `since`, oldest first."""
        ...

    def customer(self, customer_id: str) -> Customer | None: ...

    def customer_by_email(self, email: str) -> Customer | None: ...

    def secret(self, name: str) -> str:
        """A generated secret kept in the store, created on first use (the same for every
        process sharing the store)."""
        ...

    def forget(self, user_ids: Sequence[str], feedback_kinds: Sequence[str]) -> dict[str, int]:
        """Delete the links, codes, attempts and feedback events of these ids; counts by kind."""
        ...

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add to the anonymised counts of deleted data."""
        ...

    def counts(self) -> dict[str, int]:
        """The anonymised counts of deleted data, by name."""
        ...

    def held(self, user_ids: Sequence[str], feedback_kinds: Sequence[str]) -> dict[str, Any]:
        """What is held about these ids (for an export): links, feedback events, pending code."""
        ...

    def purge(self, now: datetime) -> int:
        """Delete expired tokens and codes and attempts older than a day; how many rows."""
        ...
