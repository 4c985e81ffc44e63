"""Linked identities, link tokens, e-mail codes and data-rights counts in the store database:
the `IdentityStore` of `core.identity` over SQLite or PostgreSQL."""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.identity.store import IssuedToken, Link, PendingCode
from core.shop.customers import Customer
from core.shopdb.database import ShopDatabase, as_utc, aware_utc, upsert, valid_rows
from core.shopdb.tables import (
    customers,
    email_codes,
    interactions,
    link_tokens,
    linked_identities,
    privacy_counts,
    secrets,
    verification_attempts,
)

ATTEMPTS_KEPT = timedelta(days=1)


class SqlIdentities:
    """`IdentityStore` over the store database. Thread-safe: a connection per call."""

    def __init__(self, database: ShopDatabase) -> None:
        self.database = database
        self._engine = database.engine
        self._reads = database.reads

    # -- links -----------------------------------------------------------------------------

    def link_of(self, user_id: str) -> Link | None:
        query = select(linked_identities).where(linked_identities.c.user_id == user_id)
        with self._reads.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _link(row) if row is not None else None

    def save_link(self, link: Link) -> None:
        row = link.model_dump() | {"linked_at": as_utc(link.linked_at)}
        with self._engine.begin() as connection:
            upsert(connection, linked_identities, [row])

    def remove_link(self, user_id: str) -> bool:
        with self._engine.begin() as connection:
            gone = connection.execute(
                delete(linked_identities).where(linked_identities.c.user_id == user_id)
            )
        return bool(gone.rowcount)

    def links_of_customer(self, customer_id: str) -> list[Link]:
        query = (
            select(linked_identities)
            .where(linked_identities.c.customer_id == customer_id)
            .order_by(linked_identities.c.linked_at)
        )
        with self._reads.connect() as connection:
            return [_link(row) for row in connection.execute(query).mappings()]

    # -- tokens and codes ------------------------------------------------------------------

    def add_token(self, token: IssuedToken) -> None:
        row = token.model_dump() | {"expires_at": as_utc(token.expires_at)}
        with self._engine.begin() as connection:
            connection.execute(insert(link_tokens).values(row))

    def token(self, nonce: str) -> IssuedToken | None:
        with self._reads.connect() as connection:
            row = connection.execute(
                select(link_tokens).where(link_tokens.c.nonce == nonce)
            ).mappings().first()
        if row is None:
            return None
        return IssuedToken(
            nonce=row["nonce"], customer_id=row["customer_id"],
            expires_at=aware_utc(row["expires_at"]),
            used_at=aware_utc(row["used_at"]) if row["used_at"] else None,
        )

    def use_token(self, nonce: str, now: datetime) -> bool:
        change = (
            update(link_tokens)
            .where(link_tokens.c.nonce == nonce, link_tokens.c.used_at.is_(None),
                   link_tokens.c.expires_at > as_utc(now))
            .values(used_at=as_utc(now))
        )
        with self._engine.begin() as connection:
            return connection.execute(change).rowcount == 1

    def pending_code(self, user_id: str) -> PendingCode | None:
        with self._reads.connect() as connection:
            row = connection.execute(
                select(email_codes).where(email_codes.c.user_id == user_id)
            ).mappings().first()
        if row is None:
            return None
        return PendingCode.model_validate(dict(row) | {"expires_at": aware_utc(row["expires_at"])})

    def save_code(self, code: PendingCode) -> None:
        row = code.model_dump() | {"expires_at": as_utc(code.expires_at)}
        with self._engine.begin() as connection:
            upsert(connection, email_codes, [row])

    def count_code_attempt(self, user_id: str) -> None:
        change = (
            update(email_codes)
            .where(email_codes.c.user_id == user_id)
            .values(attempts=email_codes.c.attempts + 1)
        )
        with self._engine.begin() as connection:
            connection.execute(change)

    def drop_code(self, user_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(email_codes).where(email_codes.c.user_id == user_id))

    # -- attempts ----------------------------------------------------------------------------

    def note_attempt(self, user_id: str, kind: str, at: datetime) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                insert(verification_attempts).values(user_id=user_id, kind=kind, at=as_utc(at))
            )

    def attempts_since(
        self, user_id: str, since: datetime, kind: str | None = None
    ) -> list[datetime]:
        query = (
            select(verification_attempts.c.at)
            .where(verification_attempts.c.user_id == user_id,
                   verification_attempts.c.at >= as_utc(since))
            .order_by(verification_attempts.c.at)
        )
        if kind is not None:
            query = query.where(verification_attempts.c.kind == kind)
        with self._reads.connect() as connection:
            return [aware_utc(at) for at in connection.scalars(query)]

    # -- customers and secrets ---------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer | None:
        return self.database.customer(customer_id)

    def customer_by_email(self, email: str) -> Customer | None:
        query = select(customers).where(func.lower(customers.c.email) == email.strip().lower())
        with self._reads.connect() as connection:
            row = connection.execute(query.limit(1)).mappings().first()
        return next(valid_rows(Customer, [dict(row)]), None) if row is not None else None

    def secret(self, name: str) -> str:
        query = select(secrets.c.value).where(secrets.c.name == name)
        with self._reads.connect() as connection:
            value = connection.scalar(query)
        if value is not None:
            return str(value)
        try:  # two processes may race to create it: the first one's stays
            with self._engine.begin() as connection:
                connection.execute(
                    insert(secrets).values(name=name, value=random_secrets.token_urlsafe(48))
                )
        except IntegrityError:
            pass
        with self._reads.connect() as connection:
            return str(connection.scalar(query))

    # -- data rights -------------------------------------------------------------------------

    def forget(self, user_ids: Sequence[str], feedback_kinds: Sequence[str]) -> dict[str, int]:
        ids = list(user_ids)
        counts: dict[str, int] = {}
        with self._engine.begin() as connection:
            for kind in feedback_kinds:
                gone = connection.execute(
                    delete(interactions).where(
                        interactions.c.customer_id.in_(ids), interactions.c.kind == kind
                    )
                )
                counts[f"feedback.{kind}"] = gone.rowcount
            counts["links"] = connection.execute(
                delete(linked_identities).where(linked_identities.c.user_id.in_(ids))
            ).rowcount
            connection.execute(delete(email_codes).where(email_codes.c.user_id.in_(ids)))
            connection.execute(
                delete(verification_attempts).where(verification_attempts.c.user_id.in_(ids))
            )
        return counts

    def add_counts(self, counts: dict[str, int]) -> None:
        with self._engine.begin() as connection:
            for name, value in counts.items():
                if not value:
                    continue
                changed = connection.execute(
                    update(privacy_counts)
                    .where(privacy_counts.c.name == name)
                    .values(value=privacy_counts.c.value + value)
                )
                if changed.rowcount == 0:
                    connection.execute(insert(privacy_counts).values(name=name, value=value))

    def counts(self) -> dict[str, int]:
        with self._reads.connect() as connection:
            rows = connection.execute(select(privacy_counts)).all()
        return {name: int(value) for name, value in rows}

    def held(self, user_ids: Sequence[str], feedback_kinds: Sequence[str]) -> dict[str, Any]:
        ids = list(user_ids)
        with self._reads.connect() as connection:
            links = connection.execute(
                select(linked_identities).where(linked_identities.c.user_id.in_(ids))
            ).mappings().all()
            feedback = connection.execute(
                select(interactions)
                .where(interactions.c.customer_id.in_(ids),
                       interactions.c.kind.in_(list(feedback_kinds)))
                .order_by(interactions.c.at)
            ).mappings().all()
            codes = connection.execute(
                select(email_codes.c.expires_at, email_codes.c.attempts)
                .where(email_codes.c.user_id.in_(ids))
            ).mappings().all()
        return {
            "links": [_link(row).model_dump(mode="json") for row in links],
            "feedback": [
                {**dict(row), "at": aware_utc(row["at"]).isoformat()} for row in feedback
            ],
            "pending_email_codes": [
                {"expires_at": aware_utc(row["expires_at"]).isoformat(),
                 "attempts": row["attempts"]}
                for row in codes
            ],
        }

    def purge(self, now: datetime) -> int:
        with self._engine.begin() as connection:
            total = connection.execute(
                delete(link_tokens).where(link_tokens.c.expires_at < as_utc(now))
            ).rowcount
            total += connection.execute(
                delete(email_codes).where(email_codes.c.expires_at < as_utc(now))
            ).rowcount
            total += connection.execute(
                delete(verification_attempts).where(
                    verification_attempts.c.at < as_utc(now - ATTEMPTS_KEPT)
                )
            ).rowcount
        return total


def _link(row: Any) -> Link:
    return Link.model_validate(dict(row) | {"linked_at": aware_utc(row["linked_at"])})
