"""The customer's account in whole turns: linking by token and by e-mail code (real SMTP),
unlinking, order privacy after each proof, and deleting one's data, over the demo store
database, a SQLite state file and a SQLite ticket store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.handover.tickets.sqlite import SqliteTicketStore
from core.identity.accounts import Accounts
from core.identity.mail import SmtpMailer
from core.identity.rights import DataRights
from core.shop.interactions import Interaction
from core.shopdb.database import ShopDatabase
from core.shopdb.identity import SqlIdentities
from core.shopdb.services import open_shop
from core.state.sqlite import SqliteStateStore
from core.turn import replies
from core.turn.account import DELETE_CANCEL, DELETE_CONFIRM
from core.turn.conversation import Conversation, Services
from core.turn.messages import CollectingOutbox, Incoming, Reply
from core.turn.understanding import Intent
from tests.conftest import MailServer
from tests.core.turn.test_conversation import FilteringRecommender, ScriptedUnderstander, says

USER = "telegram:1001"


@pytest.fixture
def database(demo_store: str) -> Iterator[ShopDatabase]:
    opened = ShopDatabase(demo_store)
    yield opened
    identities = SqlIdentities(opened)
    identities.forget([USER, "telegram:2002", "C0009"], ["more_like_this"])
    opened.close()


@pytest.fixture
def conversation(tmp_path: Path, database: ShopDatabase, mail_server: MailServer) -> Conversation:
    shop = open_shop(database)
    states = SqliteStateStore(tmp_path / "state.sqlite3")
    accounts = Accounts(SqlIdentities(database), "secret",
                        SmtpMailer(mail_server.host, mail_server.port))
    rights = DataRights(states, accounts.store, SqliteTicketStore(tmp_path / "state.sqlite3"))
    understander = ScriptedUnderstander()
    services = Services(
        store=states, understander=understander,
        recommender=FilteringRecommender(shop.catalog), catalog=shop.catalog,
        orders=shop.orders, knowledge=shop.knowledge, accounts=accounts, rights=rights,
    )
    return Conversation(services)


def say(conversation: Conversation, text: str = "", user: str = USER,
        button: str | None = None) -> list[Reply]:
    outbox = CollectingOutbox()
    conversation.handle(Incoming(f"c:{user}", user, text=text, button=button), outbox)
    return outbox.replies


def order_of(database: ShopDatabase, customer: str = "C0009"):  # type: ignore[no-untyped-def]
    return next(o for o in database.orders_of(customer) if o.tracking_number)


def ask_order(conversation: Conversation, order_id: str, user: str = USER) -> str:
    script = conversation.services.understander.script  # type: ignore[attr-defined]
    script[f"where is order {order_id}"] = says(Intent.ORDER_STATUS, order_id=order_id)
    return say(conversation, f"where is order {order_id}", user)[0].text


def test_link_token_then_orders_and_personal_suggestions(
    conversation: Conversation, database: ShopDatabase
) -> None:
    accounts = conversation.services.accounts
    assert accounts is not None
    mine, theirs = order_of(database), order_of(database, "C0001")
    assert "To show order details" in ask_order(conversation, mine.id)
    token = accounts.issue("C0009", accounts_now()).token
    (reply,) = say(conversation, f"link {token}")
    assert reply.private and "linked to your account" in reply.text
    assert mine.tracking_number in ask_order(conversation, mine.id)  # type: ignore[operator]
    assert theirs.tracking_number not in ask_order(conversation, theirs.id)  # type: ignore[operator]
    # The token never reaches the transcript.
    state = conversation.services.store.load(f"c:{USER}")
    assert all(token not in turn.text for turn in state.transcript)
    assert state.customer_id == "C0009"
    # Suggestions now come from the customer's history, not the platform id.
    script = conversation.services.understander.script  # type: ignore[attr-defined]
    script["a jacket"] = says(Intent.RECOMMEND, category="outerwear", terms=("jacket",))
    say(conversation, "a jacket")
    recommender = conversation.services.recommender
    assert recommender.requests[-1].user_id == "C0009"  # type: ignore[attr-defined]
    (bye,) = say(conversation, "log out")
    assert bye.text == replies.UNLINKED
    assert "To show order details" in ask_order(conversation, mine.id)


def test_email_code_links_through_a_real_smtp_server(
    conversation: Conversation, database: ShopDatabase, mail_server: MailServer
) -> None:
    customer = database.customer("C0009")
    assert customer is not None
    (sent,) = say(conversation, f"my email is {customer.email}")
    assert "I've sent it a 6-digit code" in sent.text
    (code,) = mail_server.codes_for(customer.email)
    (linked,) = say(conversation, f"{code[:3]} {code[3:]}")
    assert "linked to your account" in linked.text
    state = conversation.services.store.load(f"c:{USER}")
    assert all(code not in turn.text for turn in state.transcript)
    assert all(customer.email not in turn.text for turn in state.transcript)
    assert order_of(database).tracking_number in ask_order(conversation, order_of(database).id)  # type: ignore[operator]


def test_order_number_with_its_email_opens_that_order_only(
    conversation: Conversation, database: ShopDatabase
) -> None:
    order = order_of(database)
    email = database.customer("C0009").email  # type: ignore[union-attr]
    ask_order(conversation, order.id)
    (wrong,) = say(conversation, "someone@example.com")
    assert wrong.text == replies.ORDER_EMAIL_WRONG
    (opened,) = say(conversation, f"order {order.id} {email}")
    assert opened.private and order.tracking_number in opened.text  # type: ignore[operator]
    assert conversation.services.accounts.customer_of(USER) is None  # type: ignore[union-attr]


def test_guessing_order_numbers_is_rate_limited(conversation: Conversation) -> None:
    answers = [ask_order(conversation, f"{10000 + n}", "telegram:2002") for n in range(12)]
    assert all("To show order details" in answer for answer in answers[:10])
    assert all("too many tries" in answer for answer in answers[10:])


def test_delete_my_data_asks_then_forgets(
    conversation: Conversation, database: ShopDatabase
) -> None:
    accounts = conversation.services.accounts
    assert accounts is not None
    say(conversation, f"link {accounts.issue('C0009', accounts_now()).token}")
    database.record_interaction(Interaction(customer_id="C0009", item_id="P0001",
                                            kind="more_like_this", at=accounts_now()))
    (ask,) = say(conversation, "please delete my data")
    assert [b.payload for b in ask.buttons] == [DELETE_CONFIRM, DELETE_CANCEL]
    (kept,) = say(conversation, button=DELETE_CANCEL)
    assert kept.text == replies.DELETE_KEPT and accounts.customer_of(USER) == "C0009"
    (done,) = say(conversation, button=DELETE_CONFIRM)
    assert re.match(r"Done: I deleted 1 conversation, [1-9]\d* feedback events? and the link",
                    done.text)
    assert accounts.customer_of(USER) is None
    held = accounts.store.held([USER, "C0009"], ["more_like_this", "not_for_me", "details"])
    assert held["feedback"] == [] and held["links"] == []
    assert conversation.services.store.conversations_of(USER) == []
    assert conversation.services.store.load(f"c:{USER}").transcript == ()


def accounts_now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)
