"""Linked identities on both store backends: link tokens, e-mail codes through a real SMTP
server, order + e-mail proofs, the hourly limit, and forgetting a person."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from core.identity.accounts import AccountRules, Accounts, UnknownCustomer
from core.identity.mail import SmtpMailer
from core.infra.settings import Settings
from core.shop.interactions import Interaction
from core.shopdb.database import ShopDatabase
from core.shopdb.identity import SqlIdentities
from core.shopdb.importer import import_store
from tests.conftest import MailServer, demo_store_files

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
USER = "telegram:1001"


@pytest.fixture
def shop(database: ShopDatabase) -> ShopDatabase:
    files = demo_store_files(Settings().demo_dir)
    import_store(database, {kind: files[kind] for kind in ("catalog", "customers", "orders")})
    return database


@pytest.fixture
def accounts(shop: ShopDatabase, mail_server: MailServer) -> Iterator[Accounts]:
    mailer = SmtpMailer(mail_server.host, mail_server.port)
    yield Accounts(SqlIdentities(shop), "a-test-secret", mailer, AccountRules())


def test_a_link_token_links_once_and_fits_a_telegram_deep_link(accounts: Accounts) -> None:
    issued = accounts.issue("C0009", NOW)
    assert len(issued.token) <= 64 and issued.token.replace("-", "").replace("_", "").isalnum()
    verdict = accounts.redeem(USER, issued.token, NOW + timedelta(minutes=1))
    assert verdict.status == "linked" and verdict.customer is not None
    assert verdict.customer.id == "C0009" and accounts.customer_of(USER) == "C0009"
    # Single use: a second user (or the same one) gets nothing from it.
    assert accounts.redeem("telegram:2002", issued.token, NOW).status == "expired"
    assert accounts.customer_of("telegram:2002") is None


def test_expired_tampered_and_unknown_tokens_link_nothing(accounts: Accounts) -> None:
    old = accounts.issue("C0009", NOW)
    assert accounts.redeem(USER, old.token, NOW + timedelta(hours=1)).status == "expired"
    fresh = accounts.issue("C0009", NOW)
    flipped = fresh.token[:-1] + ("A" if fresh.token[-1] != "A" else "B")
    assert accounts.redeem(USER, flipped, NOW).status == "wrong"
    assert accounts.redeem(USER, "x" * 40, NOW).status == "wrong"
    assert accounts.customer_of(USER) is None
    # A token signed with another secret is refused even though its nonce is in the store.
    other = Accounts(accounts.store, "another-secret")
    assert other.redeem(USER, fresh.token, NOW).status == "wrong"
    with pytest.raises(UnknownCustomer):
        accounts.issue("C9999", NOW)


def test_an_emailed_code_links_the_account(
    accounts: Accounts, shop: ShopDatabase, mail_server: MailServer
) -> None:
    customer = shop.customer("C0009")
    assert customer is not None
    assert accounts.request_code(USER, customer.email.upper(), NOW).status == "sent"
    (code,) = mail_server.codes_for(customer.email)
    assert accounts.has_code(USER, NOW)
    wrong = "000000" if code != "000000" else "111111"
    assert accounts.enter_code(USER, wrong, NOW).status == "wrong"
    assert accounts.enter_code(USER, code, NOW).status == "linked"
    assert accounts.customer_of(USER) == "C0009"
    assert not accounts.has_code(USER, NOW)  # used up


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    accounts: Accounts, mail_server: MailServer
) -> None:
    assert accounts.request_code(USER, "nobody@example.com", NOW).status == "sent"
    assert mail_server.messages == [] and not accounts.has_code(USER, NOW)


def test_a_code_dies_after_its_attempts_or_its_time(
    accounts: Accounts, shop: ShopDatabase, mail_server: MailServer
) -> None:
    email = shop.customer("C0009").email  # type: ignore[union-attr]
    accounts.request_code(USER, email, NOW)
    (code,) = mail_server.codes_for(email)
    wrong = "000000" if code != "000000" else "111111"
    verdicts = [accounts.enter_code(USER, wrong, NOW) for _ in range(5)]
    assert [v.left for v in verdicts] == [4, 3, 2, 1, 0]
    assert verdicts[-1].status == "expired"
    assert accounts.enter_code(USER, code, NOW).status == "none"  # voided: right code too late
    accounts.request_code(USER, email, NOW)
    late = mail_server.codes_for(email)[-1]
    assert accounts.enter_code(USER, late, NOW + timedelta(minutes=11)).status == "expired"
    assert accounts.customer_of(USER) is None


def test_guesses_are_limited_per_hour(accounts: Accounts, shop: ShopDatabase) -> None:
    order = shop.orders_of("C0009")[0]
    for minute in range(10):
        verdict = accounts.open_order(USER, order, f"guess{minute}@example.com",
                                      NOW + timedelta(minutes=minute))
        assert verdict.status == "wrong"
    owner = shop.customer("C0009").email  # type: ignore[union-attr]
    limited = accounts.open_order(USER, order, owner, NOW + timedelta(minutes=10))
    assert limited.status == "limited" and 49 * 60 <= limited.retry_in_s <= 50 * 60
    assert accounts.note_unproven_lookup(USER, NOW + timedelta(minutes=20)) is not None
    # Another user is not affected; an hour later the first may try again.
    assert accounts.open_order("telegram:2002", order, owner, NOW).status == "opened"
    later = NOW + timedelta(minutes=61)
    assert accounts.open_order(USER, order, owner, later).status == "opened"


def test_forget_removes_links_codes_attempts_and_feedback(
    accounts: Accounts, shop: ShopDatabase
) -> None:
    store = accounts.store
    assert isinstance(store, SqlIdentities)
    accounts.redeem(USER, accounts.issue("C0009", NOW).token, NOW)
    accounts.open_order(USER, None, "x@example.com", NOW)
    for user in (USER, "C0009"):
        shop.record_interaction(Interaction(customer_id=user, item_id="P0001",
                                            kind="more_like_this", at=NOW))
    held = store.held([USER, "C0009"], ["more_like_this"])
    assert len(held["links"]) == 1 and len(held["feedback"]) == 2
    counts = store.forget([USER, "C0009"], ["more_like_this", "not_for_me"])
    assert counts == {"feedback.more_like_this": 2, "feedback.not_for_me": 0, "links": 1}
    store.add_counts(counts)
    store.add_counts(counts)
    assert store.counts()["feedback.more_like_this"] == 4
    assert store.link_of(USER) is None
    assert store.attempts_since(USER, NOW - timedelta(days=1)) == []
    assert store.held([USER, "C0009"], ["more_like_this"])["feedback"] == []


def test_the_generated_secret_is_shared_by_every_process(shop: ShopDatabase) -> None:
    first, second = SqlIdentities(shop), SqlIdentities(ShopDatabase(str(shop.url)))
    assert first.secret("link") == second.secret("link") and len(first.secret("link")) >= 48
    issued = Accounts(first).issue("C0001", NOW)
    assert Accounts(second).redeem(USER, issued.token, NOW).status == "linked"
