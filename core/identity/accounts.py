"""Linking platform users to store customers, with proof, and limits on guessing.

Two proofs link an account:
- a link token the shop issues to a logged-in customer (`concierge link issue`, or its HTTP
  endpoint): 40 characters of `A-Za-z0-9_-` (it fits a Telegram deep link), single use, expiring;
  a random nonce (kept in the store) plus an HMAC over nonce, customer and expiry, so a token is
  worthless without the store's row and the secret;
- a 6-digit code e-mailed to the address on the customer record, entered in the chat: a few
  attempts, a short life, kept only as a keyed hash.

A third proof opens one order only: its number together with the e-mail address on it.
Every failed proof, and every order number asked for without one, counts against an hourly
limit per platform user; over it, nothing is checked and the refusal is logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from core.identity.mail import Mailer, MailNotSent
from core.identity.store import IdentityStore, IssuedToken, Link, PendingCode
from core.infra.logs import event
from core.shop.customers import Customer
from core.shop.orders import Order
from core.turn import replies

log = logging.getLogger(__name__)

NONCE_BYTES, MAC_BYTES = 12, 18  # 16 + 24 characters of base64url
TOKEN = re.compile(r"[A-Za-z0-9_-]{40}")
CODE_DIGITS = 6
SECRET_NAME = "link"
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class AccountRules:
    link_ttl_s: float = 900.0  # a link token works this long after it was issued
    code_ttl_s: float = 600.0  # an e-mailed code works this long
    code_attempts: int = 5  # wrong entries that void a code
    attempts_per_hour: int = 10  # failed proofs and unproven order lookups per platform user
    codes_per_hour: int = 3  # e-mails sent per platform user


@dataclass(frozen=True)
class Issued:
    token: str
    customer_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Proof:
    """The result of one proof. `retry_in_s` is set when the hourly limit refused it."""

    status: Literal["linked", "sent", "opened", "wrong", "expired", "none", "limited", "no_mail"]
    customer: Customer | None = None
    left: int = 0  # attempts left on a code
    retry_in_s: float = 0.0


class UnknownCustomer(ValueError):
    """No customer with this id in the store."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Accounts:
    """Links, codes and limits over an `IdentityStore`; the turn and the shop's tools use it."""

    def __init__(
        self,
        store: IdentityStore,
        secret: str | None = None,
        mailer: Mailer | None = None,
        rules: AccountRules | None = None,
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.rules = rules or AccountRules()
        self._secret = (secret or store.secret(SECRET_NAME)).encode()

    # -- who is this --------------------------------------------------------------------

    def customer_of(self, user_id: str) -> str | None:
        link = self.store.link_of(user_id)
        return link.customer_id if link else None

    def unlink(self, user_id: str) -> bool:
        self.store.drop_code(user_id)
        return self.store.remove_link(user_id)

    # -- link tokens ----------------------------------------------------------------------

    def issue(self, customer_id: str, now: datetime) -> Issued:
        """A new link token for a customer the shop has signed in."""
        if self.store.customer(customer_id) is None:
            raise UnknownCustomer(customer_id)
        nonce = _b64(secrets.token_bytes(NONCE_BYTES))
        expires = now + timedelta(seconds=self.rules.link_ttl_s)
        self.store.add_token(IssuedToken(nonce=nonce, customer_id=customer_id, expires_at=expires))
        return Issued(nonce + self._mac(nonce, customer_id, expires), customer_id, expires)

    def redeem(self, user_id: str, token: str, now: datetime) -> Proof:
        if (limited := self._limited(user_id, now)) is not None:
            return limited
        record = self.store.token(token[:16]) if TOKEN.fullmatch(token) else None
        valid = record is not None and hmac.compare_digest(
            token[16:], self._mac(record.nonce, record.customer_id, record.expires_at)
        )
        if record is None or not valid:
            return self._failed(user_id, "token", now, "wrong")
        if not self.store.use_token(record.nonce, now):  # used already, or expired
            return self._failed(user_id, "token", now, "expired")
        return self._link(user_id, record.customer_id, "link", now)

    def _mac(self, nonce: str, customer_id: str, expires: datetime) -> str:
        signed = f"link|{nonce}|{customer_id}|{int(expires.timestamp())}".encode()
        return _b64(hmac.new(self._secret, signed, hashlib.sha256).digest()[:MAC_BYTES])

    # -- e-mail codes ---------------------------------------------------------------------

    def request_code(self, user_id: str, email: str, now: datetime) -> Proof:
        """Send a code if `email` is a customer's address. The answer is the same either way,
        so the chat never tells whether an address has an account."""
        mailer = self.mailer
        if mailer is None:
            return Proof("no_mail")
        if (limited := self._limited(user_id, now)) is not None:
            return limited
        sent = self.store.attempts_since(user_id, now - WINDOW, kind="code_sent")
        if len(sent) >= self.rules.codes_per_hour:
            return self._refused(user_id, sent[0], now)
        self.store.note_attempt(user_id, "code_sent", now)
        customer = self.store.customer_by_email(email)
        if customer is None:
            event(log, "identity.code_unknown_address", user=user_id)
            return Proof("sent")
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        expires = now + timedelta(seconds=self.rules.code_ttl_s)
        self.store.save_code(
            PendingCode(user_id=user_id, customer_id=customer.id,
                        code_hash=self._code_hash(user_id, code), expires_at=expires)
        )
        minutes = max(1, round(self.rules.code_ttl_s / 60))
        try:
            mailer.send(
                customer.email, replies.CODE_EMAIL_SUBJECT,
                replies.code_email(customer.name, code, minutes),
            )
        except MailNotSent as error:
            self.store.drop_code(user_id)
            event(log, "identity.code_not_sent", logging.ERROR, user=user_id, error=str(error))
            return Proof("no_mail")
        event(log, "identity.code_sent", user=user_id)
        return Proof("sent")

    def has_code(self, user_id: str, now: datetime) -> bool:
        code = self.store.pending_code(user_id)
        return code is not None and code.expires_at > now

    def enter_code(self, user_id: str, code: str, now: datetime) -> Proof:
        pending = self.store.pending_code(user_id)
        if pending is None:
            return Proof("none")
        if (limited := self._limited(user_id, now)) is not None:
            return limited
        if pending.expires_at <= now:
            self.store.drop_code(user_id)
            return Proof("expired")
        if not hmac.compare_digest(pending.code_hash, self._code_hash(user_id, code)):
            self.store.count_code_attempt(user_id)
            left = self.rules.code_attempts - pending.attempts - 1
            if left <= 0:
                self.store.drop_code(user_id)
            verdict = self._failed(user_id, "code", now, "wrong" if left > 0 else "expired")
            return Proof(verdict.status, left=max(left, 0), retry_in_s=verdict.retry_in_s)
        self.store.drop_code(user_id)
        return self._link(user_id, pending.customer_id, "email", now)

    def _code_hash(self, user_id: str, code: str) -> str:
        return hmac.new(self._secret, f"code|{user_id}|{code}".encode(), "sha256").hexdigest()

    # -- one order by its number and e-mail ----------------------------------------------------

    def open_order(self, user_id: str, order: Order | None, email: str, now: datetime) -> Proof:
        """`opened` when `email` is the address of the order's customer; a failed guess else."""
        if (limited := self._limited(user_id, now)) is not None:
            return limited
        customer = self.store.customer(order.customer_id) if order is not None else None
        if customer is None or customer.email.strip().lower() != email.strip().lower():
            return self._failed(user_id, "order_email", now, "wrong")
        return Proof("opened", customer)

    def note_unproven_lookup(self, user_id: str, now: datetime) -> Proof | None:
        """An order number asked for without proof: counted; a Proof when over the limit."""
        if (limited := self._limited(user_id, now)) is not None:
            return limited
        self.store.note_attempt(user_id, "order_lookup", now)
        event(log, "identity.unproven_order_lookup", user=user_id)
        return None

    # -- limits -----------------------------------------------------------------------------

    def _limited(self, user_id: str, now: datetime) -> Proof | None:
        recent = self.store.attempts_since(user_id, now - WINDOW)
        if len(recent) < self.rules.attempts_per_hour:
            return None
        return self._refused(user_id, recent[0], now)

    def _refused(self, user_id: str, oldest: datetime, now: datetime) -> Proof:
        retry = max(60.0, (oldest + WINDOW - now).total_seconds())
        event(log, "identity.rate_limited", logging.WARNING, user=user_id, retry_in_s=round(retry))
        return Proof("limited", retry_in_s=retry)

    def _failed(
        self, user_id: str, kind: str, now: datetime, status: Literal["wrong", "expired"]
    ) -> Proof:
        self.store.note_attempt(user_id, f"{kind}_failed", now)
        event(log, "identity.proof_failed", user=user_id, kind=kind)
        return Proof(status)

    def _link(self, user_id: str, customer_id: str, method: str, now: datetime) -> Proof:
        customer = self.store.customer(customer_id)
        if customer is None:  # deleted from the store since the token was issued
            return Proof("expired")
        self.store.save_link(
            Link(user_id=user_id, customer_id=customer_id, method=method, linked_at=now)  # type: ignore[arg-type]
        )
        event(log, "identity.linked", user=user_id, method=method)
        return Proof("linked", customer)
