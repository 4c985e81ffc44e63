"""The customer's account within a turn: proving who they are, order privacy, their data.

Handled before understanding, by exact forms only, so a link code or an e-mail code never
reaches a model and is never written to a transcript:
- `link <token>` (a Telegram deep link's `/start <token>` arrives as this): link the account;
- an e-mail address: send a code to it if it is a customer's (or, right after an order number
  was asked for, check it against that order);
- the 6-digit code while one is pending; "unlink" / "log out"; "delete my data" and its
  confirmation button.
Order details go only to the verified owner (`order_reply`); everything personal is a private
reply, which a group chat's adapter sends by direct message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.identity.accounts import Accounts, Proof
from core.identity.rights import DataRights
from core.shop.orders import Orders
from core.state.store import ConversationState
from core.turn import replies
from core.turn.messages import Button, Reply
from core.turn.slots import find_order_id

LINK = re.compile(r"^\s*/?(?:link|start)\s+(\S{10,100})\s*$", re.IGNORECASE)
UNLINK = re.compile(
    r"^\s*(?:please\s+)?(?:unlink(?:\s+(?:me|my\s+account|this\s+chat))?|log\s*(?:me\s+)?out|"
    r"sign\s*(?:me\s+)?out)(?:\s+please)?\s*[.!]*\s*$",
    re.IGNORECASE,
)
DELETE = re.compile(
    r"\b(?:delete|erase|remove|wipe)\s+(?:all\s+(?:of\s+)?)?my\s+(?:personal\s+)?"
    r"(?:data|information|info|details|history|conversations?)\b|\bforget\s+(?:about\s+)?me\b",
    re.IGNORECASE,
)
CODE = re.compile(r"^\s*(\d{3})[\s-]?(\d{3})\s*$")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
DELETE_CONFIRM, DELETE_CANCEL = "privacy:delete", "privacy:keep"
PRIVACY_BUTTON = "privacy:"


@dataclass(frozen=True)
class AccountTurn:
    """What an account message did: replies, the state to carry on from, and the transcript
    line standing for what the customer sent (never a code). `forgotten`: the person's data
    was deleted, so nothing of this turn is saved."""

    replies: tuple[Reply, ...]
    state: ConversationState
    said: str
    forgotten: bool = False


def _private(*texts: str, buttons: tuple[Button, ...] = ()) -> tuple[Reply, ...]:
    return tuple(
        Reply(text, buttons=buttons if i == len(texts) - 1 else (), private=True)
        for i, text in enumerate(texts)
    )


@dataclass
class AccountDesk:
    accounts: Accounts | None
    rights: DataRights | None
    orders: Orders
    clock: Callable[[], float]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def customer_of(self, user_id: str) -> str | None:
        return self.accounts.customer_of(user_id) if self.accounts is not None else None

    # -- account messages ------------------------------------------------------------------

    def handle(
        self, text: str, button: str | None, state: ConversationState
    ) -> AccountTurn | None:
        """The account turn this message or button is, or None for an ordinary turn."""
        if button is not None:
            return self._button(button, state) if button.startswith(PRIVACY_BUTTON) else None
        if self.rights is not None and DELETE.search(text):
            confirm = (Button(replies.DELETE_YES, DELETE_CONFIRM),
                       Button(replies.DELETE_NO, DELETE_CANCEL))
            return AccountTurn(_private(replies.DELETE_ASK, buttons=confirm), state, text)
        accounts = self.accounts
        if accounts is None:
            return None
        user, now = state.user_id, self._now()
        if match := LINK.match(text):
            verdict = accounts.redeem(user, match.group(1), now)
            return self._linked(verdict, state, "[link code]", {
                "wrong": replies.LINK_WRONG, "expired": replies.LINK_EXPIRED})
        if UNLINK.match(text):
            done = accounts.unlink(user)
            after = state.model_copy(update={"customer_id": None})
            return AccountTurn(_private(replies.UNLINKED if done else replies.NOT_LINKED),
                               after, text)
        if (code := CODE.match(text)) and accounts.has_code(user, now):
            verdict = accounts.enter_code(user, code.group(1) + code.group(2), now)
            return self._linked(verdict, state, "[e-mail code]", {
                "wrong": replies.CODE_WRONG.format(left=verdict.left),
                "expired": replies.CODE_EXPIRED, "none": replies.CODE_EXPIRED})
        if state.customer_id is None and (email := EMAIL.search(text)):
            return self._email(text, email.group(0), state)
        return None

    def _email(self, text: str, email: str, state: ConversationState) -> AccountTurn:
        assert self.accounts is not None
        user, now = state.user_id, self._now()
        order_id = find_order_id(text.lower().replace(email.lower(), " "))
        order_id = order_id or state.order_to_verify
        said = text.replace(email, "[email]")
        if order_id is not None:
            order = self.orders.get(order_id)
            verdict = self.accounts.open_order(user, order, email, now)
            after = state.model_copy(update={"order_to_verify": None})
            if verdict.status == "opened" and order is not None:
                return AccountTurn(_private(replies.order_opened(order)), after, said)
            return AccountTurn(_private(self._refusal(verdict, replies.ORDER_EMAIL_WRONG)),
                               after, said)
        verdict = self.accounts.request_code(user, email, now)
        minutes = max(1, round(self.accounts.rules.code_ttl_s / 60))
        text_out = {
            "sent": replies.CODE_SENT.format(minutes=minutes),
            "no_mail": replies.NO_MAIL,
        }.get(verdict.status) or self._refusal(verdict, replies.NO_MAIL)
        return AccountTurn(_private(text_out), state, said)

    def _linked(
        self, verdict: Proof, state: ConversationState, said: str, wording: dict[str, str]
    ) -> AccountTurn:
        if verdict.status == "linked" and verdict.customer is not None:
            after = state.model_copy(
                update={"customer_id": verdict.customer.id, "order_to_verify": None}
            )
            return AccountTurn(_private(replies.linked(verdict.customer.name)), after, said)
        fallback = wording.get("wrong", replies.LINK_WRONG)
        return AccountTurn(
            _private(wording.get(verdict.status) or self._refusal(verdict, fallback)), state, said
        )

    def _button(self, payload: str, state: ConversationState) -> AccountTurn:
        said = f"[pressed {payload}]"
        if payload != DELETE_CONFIRM or self.rights is None:
            return AccountTurn(_private(replies.DELETE_KEPT), state, said)
        counts = self.rights.delete(state.user_id)
        return AccountTurn(_private(replies.deleted(counts)), state, said, forgotten=True)

    @staticmethod
    def _refusal(verdict: Proof, otherwise: str) -> str:
        if verdict.status == "limited":
            return replies.too_many_tries(verdict.retry_in_s)
        return otherwise

    # -- orders ----------------------------------------------------------------------------

    def order_reply(
        self, state: ConversationState, order_id: str | None
    ) -> tuple[Reply, str | None]:
        """The answer to an order question, and the order left waiting for a proof (if any).
        Details only for the verified owner; anyone else learns nothing, not even whether the
        order exists, and is told how to prove who they are."""
        customer = state.customer_id
        if customer is None:
            if order_id is None:
                return Reply(self._verify_text()), None
            if self.accounts is not None:
                limited = self.accounts.note_unproven_lookup(state.user_id, self._now())
                if limited is not None:
                    return Reply(replies.too_many_tries(limited.retry_in_s)), None
            return Reply(self._verify_text()), order_id
        if order_id is None:
            mine = self.orders.for_customer(customer)
            text = replies.orders_overview(mine) if mine else replies.NO_ORDERS_YET
            return Reply(text, private=True), None
        order = self.orders.get(order_id)
        if order is None or order.customer_id.strip().upper() != customer.strip().upper():
            # The same words whether the order exists or not: they tell nothing about it.
            return Reply(replies.ORDER_NOT_YOURS.format(order_id=order_id.lstrip("#"))), None
        return Reply(replies.order_status(order), private=True), None

    def _verify_text(self) -> str:
        mail = self.accounts is not None and self.accounts.mailer is not None
        return replies.VERIFY_FOR_ORDERS if mail else replies.VERIFY_NO_MAIL
