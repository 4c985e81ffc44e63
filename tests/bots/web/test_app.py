"""The web desk over HTTP (Starlette's test client, the real stores): who may in, what the forms
refuse, and what an agent's actions do to the ticket and the customer's delivery queue."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bots.web.app import Desk, build_web_app
from bots.web.auth import hash_password
from bots.wiring import build_web_desk
from core.activity.record import TurnActivity
from core.handover.deliveries.store import customer_topic
from core.infra.settings import Settings
from core.shopdb.agents import DeskAgent
from core.state.store import ConversationState, Turn
from tests.conftest import TEST_REDIS

PASSWORD = "correct horse battery"


@dataclass
class Web:
    client: TestClient
    desk: Desk
    login: str

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path).text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)

    def sign_in(self, password: str = PASSWORD) -> int:
        response = self.client.post(
            "/login",
            data={"login": self.login, "password": password, "csrf": self.csrf()},
            follow_redirects=False,
        )
        return response.status_code

    def open_ticket(self, conversation_id: str = "terminal:web-1", customer: str | None = None,
                    platform: str = "terminal") -> str:
        now = time.time()
        state = ConversationState(
            conversation_id=conversation_id, user_id="guest-1", customer_id=customer,
            platform=platform,
            transcript=(Turn(role="customer", text="my order is late!\n*Reason:* forged", at=now),),
        )
        return self.desk.support.open(state, "customer asked for a person")


@pytest.fixture(params=["sqlite", "redis"])
def web(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> Iterator[Web]:
    """The desk on the embedded default's SQLite file, or on Redis as when scaled."""
    settings = Settings(sqlite_path=tmp_path / "state.sqlite3", state_backend=request.param,
                        redis_url=TEST_REDIS, redis_prefix=redis_prefix)
    desk, secret = build_web_desk(settings)
    login = f"dana-{uuid.uuid4().hex[:8]}"
    assert desk.sign_in.agents.add(
        DeskAgent(login=login, name="Dana", password_hash=hash_password(PASSWORD))
    )
    with TestClient(build_web_app(desk, secret)) as client:
        yield Web(client, desk, login)


def test_pages_need_a_signed_in_agent(web: Web) -> None:
    for path in ("/tickets", "/tickets/T-1", "/dashboard"):
        response = web.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert web.client.get("/dashboard/intents.csv").status_code == 401
    assert web.client.get("/events").status_code == 401


def test_a_wrong_password_is_refused_and_repeated_failures_pause_the_login(web: Web) -> None:
    response = web.client.post(
        "/login", data={"login": web.login, "password": "wrong password!", "csrf": web.csrf()}
    )
    assert response.status_code == 401 and "Wrong login or password." in response.text
    assert web.client.get("/tickets", follow_redirects=False).status_code == 303
    for _ in range(4):
        web.sign_in("wrong password!")
    assert web.sign_in() == 401  # the right password, but the login is paused for a while


def test_a_form_without_the_session_token_is_refused(web: Web) -> None:
    response = web.client.post("/login", data={"login": web.login, "password": PASSWORD})
    assert response.status_code == 403 and "security token" in response.text
    assert web.sign_in() == 303
    ticket_id = web.open_ticket()
    for token in ({}, {"csrf": "not-the-token"}):
        refused = web.client.post(f"/tickets/{ticket_id}/claim", data=token)
        assert refused.status_code == 403
    assert web.desk.support.tickets.get(ticket_id).status == "open"  # type: ignore[union-attr]


def test_an_agent_claims_replies_notes_and_resolves(web: Web) -> None:
    assert web.sign_in() == 303
    ticket_id = web.open_ticket()
    inbox = web.client.get("/tickets").text
    assert ticket_id in inbox and "not verified" in inbox
    page = web.client.get(f"/tickets/{ticket_id}").text
    # The customer's words are shown as text: their line break forges nothing.
    assert "my order is late!\n*Reason:* forged" in page
    token = web.csrf(f"/tickets/{ticket_id}")

    web.client.post(f"/tickets/{ticket_id}/claim", data={"csrf": token})
    ticket = web.desk.support.tickets.get(ticket_id)
    assert ticket is not None and ticket.status == "claimed" and ticket.agent == web.login

    key = uuid.uuid4().hex
    for _ in range(2):  # the form sent twice reaches the customer once
        page = web.client.post(f"/tickets/{ticket_id}/reply",
                               data={"csrf": token, "text": "It ships today.", "key": key}).text
    assert "Sent to the customer." in page
    queue = web.desk.support.queue
    taken = queue.take(customer_topic("terminal", "terminal:web-1"), limit=10, wait_s=0.5)
    texts = [item.delivery.reply().text for item in taken]
    assert sum("It ships today." in text for text in texts) == 1
    assert any("Dana" in text for text in texts)  # the customer sees the agent's name

    web.client.post(f"/tickets/{ticket_id}/note", data={"csrf": token, "text": "VIP"})
    web.client.post(f"/tickets/{ticket_id}/resolve", data={"csrf": token})
    ticket = web.desk.support.tickets.get(ticket_id)
    assert ticket is not None and ticket.status == "resolved"
    entries = [(e.role, e.text) for e in ticket.transcript]
    assert entries.index(("agent", "It ships today.")) < entries.index(("note", "VIP"))
    refused = web.client.post(f"/tickets/{ticket_id}/reply",
                              data={"csrf": token, "text": "too late", "key": "k2"}).text
    assert "Refused:" in refused


def test_orders_are_shown_only_for_a_verified_customer(web: Web) -> None:
    assert web.sign_in() == 303
    verified = web.open_ticket("terminal:web-2", customer="C0001")
    page = web.client.get(f"/tickets/{verified}").text
    orders = web.desk.orders.for_customer("C0001")
    assert orders and orders[-1].id in page and "verified customer C0001" in page
    stranger = web.open_ticket("terminal:web-3")
    page = web.client.get(f"/tickets/{stranger}").text
    assert orders[-1].id not in page and "has not proved" in page


def test_the_inbox_pages_and_counts(web: Web) -> None:
    assert web.sign_in() == 303
    opened = [web.open_ticket(f"terminal:page-{n}") for n in range(7)]
    web.desk.page_size = 5
    first = web.client.get("/tickets").text
    second = web.client.get("/tickets?page=2").text
    assert all(t in first for t in opened[:5]) and opened[5] not in first
    assert opened[5] in second and opened[6] in second and "Page 2 of 2" in second
    assert re.search(r'id="count-open">7<', first)
    assert web.client.get("/tickets?view=nonsense&page=x").status_code == 200


def test_dashboard_figures_and_csv(web: Web) -> None:
    assert web.sign_in() == 303
    web.desk.dashboard.activity.write([
        TurnActivity(at=time.time(), platform="telegram", intent="order_status",
                     sentiment="negative", decision="order_status", first_today=True, shown=3,
                     pressed=2, feedback="details"),
    ])
    page = web.client.get("/dashboard")
    assert page.status_code == 200
    for title in ("Conversations and turns per day", "What customers asked for",
                  "Escalation rate per day", "CSAT", "click-through by position",
                  "Serving recommender"):
        assert title in page.text
    assert page.text.count("<svg") >= 5
    intents = web.client.get("/dashboard/intents.csv")
    assert intents.status_code == 200 and intents.text.splitlines()[0] == "intent,turns"
    assert any(line.startswith("order_status,") for line in intents.text.splitlines())
    clicks = web.client.get("/dashboard/click-through.csv").text.splitlines()
    position_2 = clicks[2].split(",")
    assert position_2[0] == "2" and int(position_2[1]) >= 1 and int(position_2[2]) >= 1
    assert web.client.get("/dashboard/nothing.csv").status_code == 404


def test_every_response_carries_the_security_headers(web: Web) -> None:
    response = web.client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
