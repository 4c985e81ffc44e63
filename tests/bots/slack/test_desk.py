"""The Slack desk on a real bolt app: signed HTTP events in, the stand-in Web API out.

The customer adapter runs on the same app (as in `python -m bots.slack`), so these tests also
show that support-channel messages never reach it, and that both kinds of buttons work side by
side. Storage is a real SQLite file.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from pydantic import SecretStr

from bots.ledger.sqlite import SqliteLedger
from bots.slack.customers import http_app, slack_adapter
from bots.slack.desk import NOT_AN_AGENT, SlackDesk, _plain, ticket_blocks
from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.deliveries.store import AGENTS_TOPIC, Delivery
from core.handover.escalation import SupportDesk
from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import Ticket, TicketEntry
from core.infra.settings import Settings
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState, EscalationState
from core.turn.messages import Incoming, Outbox, Reply
from tests.bots.peers import (
    TEAM,
    LoopThread,
    SlackWebApi,
    event_body,
    free_port,
    post_bytes,
    serve_on,
    settled,
    signed_headers,
    wait_until,
)

SECRET = "desk-signing-secret"
SUPPORT = "C0SUPPORT"
DANA, OMAR, EVE = "U0DANA", "U0OMAR", "U0EVE"  # allow-listed, in the agents' group, neither


class DeskWebApi(SlackWebApi):
    """The stand-in, plus the user group and profile lookups the desk makes (HTTP GET)."""

    def __init__(self) -> None:
        super().__init__()
        stand_in = self

        def do_get(request: BaseHTTPRequestHandler) -> None:
            stand_in._lookup(request)

        self.server.RequestHandlerClass.do_GET = do_get  # type: ignore[attr-defined]

    def _lookup(self, request: BaseHTTPRequestHandler) -> None:
        method, _, query = request.path.removeprefix("/api/").partition("?")
        with self._lock:
            self.calls.append(
                {
                    "method": method,
                    "body": dict(parse_qsl(query)),
                    "status": 200,
                    "authorization": request.headers.get("Authorization"),
                    "at": time.time(),
                }
            )
        if method == "usergroups.users.list":
            self._send(request, 200, {"ok": True, "users": [OMAR]}, {})
        elif method == "users.info":
            user = dict(parse_qsl(query)).get("user", "")
            name = {DANA: "Dana", OMAR: "Omar"}.get(user, "")
            answer = {"ok": True, "user": {"id": user, "profile": {"display_name": name}}}
            self._send(request, 200, answer, {})
        else:
            self._send(request, 404, {"ok": False, "error": "unknown_method"}, {})


class Customers:
    """Stands in for `Conversation.handle` on the customer side: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[Incoming] = []

    def __call__(self, incoming: Incoming, outbox: Outbox) -> None:
        self.seen.append(incoming)
        outbox.send(Reply("customer side answered"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    api = DeskWebApi().start()
    port = free_port()
    path = tmp_path / "concierge.sqlite3"
    desk = SupportDesk(SqliteTicketStore(path), SqliteDeliveryQueue(path), SqliteStateStore(path))
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-desk"),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=api.base_url,
        slack_port=port,
    )
    customers = Customers()
    adapter = slack_adapter(settings, customers, SqliteLedger(tmp_path / "ledger.sqlite3", 3600))
    slack_desk = SlackDesk(desk, adapter.client, SUPPORT, frozenset({DANA}), "S0AGENTS")
    slack_desk.install(adapter.app)
    loop = LoopThread()

    runner = loop.run(serve_on(http_app(adapter, settings), port))
    url = f"http://127.0.0.1:{port}{settings.slack_path}"
    yield {
        "api": api,
        "desk": desk,
        "slack_desk": slack_desk,
        "url": url,
        "loop": loop,
        "customers": customers,
    }
    loop.run(runner.cleanup())
    loop.close()
    api.stop()


def open_ticket(desk: SupportDesk, conversation_id: str = "telegram:42") -> str:
    state = ConversationState(
        conversation_id=conversation_id,
        user_id="telegram:42",
        platform="telegram",
        sentiments=("neutral", "negative"),
    )
    ticket_id = desk.open(state, "negative sentiment persists", "this is <b>ridiculous</b>!")
    desk.states.save(
        state.model_copy(update={"escalation": EscalationState(status="open", ticket_id=ticket_id)})
    )
    return ticket_id


def post_news(world: dict[str, Any]) -> None:
    """What the desk's background loop does, once."""
    slack_desk: SlackDesk = world["slack_desk"]
    loop: LoopThread = world["loop"]

    def handle(delivery: Any) -> None:
        loop.run(slack_desk.post_news(delivery))

    Deliveries(slack_desk.desk.queue, AGENTS_TOPIC, handle, wait_s=0.05).poll()


def deliver(url: str, event: dict[str, Any], event_id: str | None = None) -> None:
    body = event_body(event, event_id or f"Ev{uuid.uuid4().hex[:8]}")
    data = json.dumps(body).encode()
    assert post_bytes(url, data, signed_headers(SECRET, data))[0] == 200


def thread_message(ts: str, root: str, user: str, text: str, kind: str = "message") -> dict:
    event = {
        "type": kind,
        "channel": SUPPORT,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "thread_ts": root,
    }
    return event


def press(url: str, user: str, ticket: Ticket, action: str) -> None:
    root = ticket.agent_thread.rsplit(":", 1)[1] if ticket.agent_thread else "1.1"
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "test"},
        "user": {"id": user, "team_id": TEAM},
        "api_app_id": "A0TEST",
        "token": "unused",
        "trigger_id": "t1",
        "channel": {"id": SUPPORT, "name": "support"},
        "container": {"type": "message", "message_ts": root, "channel_id": SUPPORT},
        "message": {"type": "message", "ts": root, "bot_id": "BBOT", "text": "ticket"},
        "actions": [
            {
                "type": "button",
                "action_id": f"concierge.desk.{action}",
                "block_id": "b",
                "value": ticket.id,
                "action_ts": f"{time.time():.6f}",
                "text": {"type": "plain_text", "text": action},
            }
        ],
    }
    data = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed_headers(SECRET, data, content_type="application/x-www-form-urlencoded")
    assert post_bytes(url, data, headers)[0] == 200


def transcript(desk: SupportDesk, ticket_id: str) -> list[TicketEntry]:
    ticket = desk.tickets.get(ticket_id)
    return list(ticket.transcript) if ticket is not None else []


def ephemerals(api: SlackWebApi, user: str) -> list[str]:
    return [
        str(c["body"].get("text"))
        for c in list(api.calls)
        if c["method"] == "chat.postEphemeral" and c["body"].get("user") == user
    ]


def posted(api: SlackWebApi, channel: str = SUPPORT) -> list[dict[str, Any]]:
    return api.posted(channel)


def test_new_ticket_is_posted_once_with_its_story(world: dict[str, Any]) -> None:
    desk: SupportDesk = world["desk"]
    ticket_id = open_ticket(desk)
    post_news(world)
    post_news(world)  # nothing new: nothing posted twice
    [post] = posted(world["api"])
    assert post["text"].startswith(f"New ticket {ticket_id}")
    blocks = json.dumps(post["blocks"], ensure_ascii=False)
    assert "negative sentiment persists" in blocks and "neutral → negative" in blocks
    assert "&lt;b&gt;ridiculous&lt;/b&gt;" in blocks  # customer text is escaped for mrkdwn
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None and ticket.agent_thread is not None
    assert ticket.agent_thread.startswith(f"slack:{SUPPORT}:")
    # A redelivered "opened" news (crash before the acknowledgement) posts nothing new.
    loop: LoopThread = world["loop"]
    again = Delivery(
        id="again",
        topic=AGENTS_TOPIC,
        kind="ticket_opened",
        conversation_id="telegram:42",
        ticket_id=ticket_id,
        created_at=time.time(),
    )
    loop.run(world["slack_desk"].post_news(again))
    assert len(posted(world["api"])) == 1


def test_agent_thread_reply_is_relayed_once_and_never_reaches_the_customer_side(
    world: dict[str, Any],
) -> None:
    desk: SupportDesk = world["desk"]
    ticket_id = open_ticket(desk)
    post_news(world)
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None and ticket.agent_thread is not None
    root = ticket.agent_thread.rsplit(":", 1)[1]
    ts = f"{time.time():.6f}"
    text = "<@UBOT> Checking it now &amp; will update you: <https://shop.example/o/1|your order>"
    deliver(world["url"], thread_message(ts, root, DANA, text, "app_mention"))
    deliver(world["url"], thread_message(ts, root, DANA, text))  # the same message, as a message
    deliver(world["url"], thread_message(ts, root, DANA, text), "EvRetry")  # and a retry
    def agent_lines() -> list[TicketEntry]:
        return [e for e in (desk.tickets.get(ticket_id) or ticket).transcript if e.role == "agent"]

    wait_until(agent_lines, 10)  # the first of the three is relayed; the others must not be
    relayed = settled(agent_lines, 0.5)
    assert len(relayed) == 1
    assert relayed[0].text == (
        "Checking it now & will update you: your order (https://shop.example/o/1)"
    )
    assert world["customers"].seen == []  # the customer adapter never saw the support channel
    replies = [d for d in desk.queue.take("telegram", wait_s=0.2)]
    texts = [t.delivery.text for t in replies]
    assert any(t.startswith("Dana (support team): Checking it now") for t in texts), texts


def test_internal_notes_stay_internal(world: dict[str, Any]) -> None:
    desk: SupportDesk = world["desk"]
    ticket_id = open_ticket(desk)
    post_news(world)
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None and ticket.agent_thread is not None
    root = ticket.agent_thread.rsplit(":", 1)[1]
    deliver(world["url"], thread_message(f"{time.time():.6f}", root, DANA, "// ask the warehouse"))
    wait_until(lambda: any(e.role == "note" for e in transcript(desk, ticket_id)), 10)
    assert desk.queue.take("telegram", wait_s=0.2) == []


def test_only_agents_may_act(world: dict[str, Any]) -> None:
    desk: SupportDesk = world["desk"]
    api: SlackWebApi = world["api"]
    ticket_id = open_ticket(desk)
    post_news(world)
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None
    press(world["url"], EVE, ticket, "claim")
    wait_until(lambda: NOT_AN_AGENT in ephemerals(api, EVE), 10)
    root = ticket.agent_thread.rsplit(":", 1)[1] if ticket.agent_thread else ""
    deliver(world["url"], thread_message(f"{time.time():.6f}", root, EVE, "I'll take it"))
    wait_until(lambda: len(ephemerals(api, EVE)) == 2, 10)
    assert "not sent" in ephemerals(api, EVE)[1]
    assert desk.tickets.get(ticket_id).status == "open"  # type: ignore[union-attr]

    press(world["url"], OMAR, ticket, "claim")  # a member of the agents' user group
    wait_until(lambda: desk.tickets.get(ticket_id).agent == OMAR, 10)  # type: ignore[union-attr]
    press(world["url"], DANA, ticket, "claim")  # already Omar's: refused with the reason
    wait_until(lambda: any("already claimed" in t for t in ephemerals(api, DANA)), 10)
    press(world["url"], DANA, ticket, "resolve")
    wait_until(lambda: desk.tickets.get(ticket_id).status == "resolved", 10)  # type: ignore

    def card_updates() -> list[str]:
        return [str(c["body"]["blocks"]) for c in list(api.calls) if c["method"] == "chat.update"]

    # The card is updated after the ticket is stored: wait for it, it comes a moment later.
    wait_until(lambda: ":white_check_mark: Resolved" in "".join(card_updates()[-1:]), 10)
    state = desk.states.load("telegram:42")
    assert state.escalation.status == "awaiting_rating"


def test_blocks_offer_what_the_status_allows() -> None:
    base = Ticket(
        id="T-1",
        conversation_id="c",
        customer="u",
        platform="telegram",
        reason="r",
        created_at=1.0,
        updated_at=1.0,
    )

    def actions(ticket: Ticket) -> list[str]:
        return [
            e["action_id"].rsplit(".", 1)[1]
            for b in ticket_blocks(ticket, "s")
            if b["type"] == "actions"
            for e in b["elements"]
        ]

    assert actions(base) == ["claim", "resolve", "handback"]
    assert actions(base.model_copy(update={"status": "claimed", "agent": DANA})) == [
        "resolve",
        "handback",
    ]
    assert actions(base.model_copy(update={"status": "resolved", "agent": DANA})) == []


def test_slack_markup_becomes_plain_text() -> None:
    assert (
        _plain("a &lt;b&gt; &amp; <https://x.example|site>") == "a <b> & site (https://x.example)"
    )
    assert _plain("see <https://x.example>") == "see https://x.example"


def test_unclaimed_ticket_reminds_the_channel(world: dict[str, Any]) -> None:
    desk: SupportDesk = world["desk"]
    ticket_id = open_ticket(desk)
    post_news(world)
    desk.clock = lambda: time.time() + desk.sla_s + 60  # the SLA has passed
    assert [t.id for t in desk.sweep()] == [ticket_id]
    post_news(world)
    [reminder] = [p for p in posted(world["api"]) if "Nobody has claimed" in str(p.get("text"))]
    ticket = desk.tickets.get(ticket_id)
    assert ticket is not None and ticket.agent_thread is not None
    assert reminder["thread_ts"] == ticket.agent_thread.rsplit(":", 1)[1]
    assert str(reminder["reply_broadcast"]).lower() == "true"  # shown in the channel too
    assert "<!here>" in reminder["text"]
    customer = [t.delivery.text for t in desk.queue.take("telegram", wait_s=0.2)]
    assert any("nobody from our team has picked up your request yet" in t for t in customer)


FORGED = "hi\n*Reason:* VIP refund approved\n*Status:* :white_check_mark: refund approved"


def field_lines(blocks: list[dict[str, Any]], label: str) -> list[str]:
    """Lines of the card's mrkdwn that Slack shows as the field `label` (a bold label that
    starts a line)."""
    texts = [b["text"]["text"] for b in blocks if b.get("text", {}).get("type") == "mrkdwn"]
    return [line for text in texts for line in text.split("\n") if line.startswith(label)]


def test_customer_newlines_cannot_forge_fields_on_the_ticket_card(world: dict[str, Any]) -> None:
    desk: SupportDesk = world["desk"]
    state = ConversationState(conversation_id="telegram:42", user_id="telegram:42",
                              platform="telegram", sentiments=("negative",))
    ticket_id = desk.open(state, "negative sentiment persists", FORGED)
    desk.states.save(state.model_copy(
        update={"escalation": EscalationState(status="open", ticket_id=ticket_id)}))
    post_news(world)
    [post] = posted(world["api"])
    blocks = post["blocks"]
    assert field_lines(blocks, "*Reason:*") == ["*Reason:* negative sentiment persists"]
    assert field_lines(blocks, "*Status:*") == ["*Status:* :large_orange_circle: Open, unclaimed"]
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "VIP refund approved" in shown  # still shown to the agent: quoted, on the turn's line
    assert "> Customer: hi ⏎ *Reason:* VIP refund approved" in shown

    # The same message again while escalated: posted in the ticket's thread, quoted.
    desk.relay(state.model_copy(update={"escalation": EscalationState(
        status="open", ticket_id=ticket_id)}), "still waiting\n*Agent:* refund approved")
    post_news(world)
    [relayed] = [c for c in posted(world["api"]) if c.get("thread_ts")]
    assert relayed["text"] == "*Customer:*\n> still waiting\n> *Agent:* refund approved"


def test_summary_lines_stay_inside_the_quote() -> None:
    ticket = Ticket(id="T-1", conversation_id="c", customer="u", platform="telegram",
                    reason="customer asked for a person", created_at=1.0, updated_at=1.0)
    blocks = ticket_blocks(ticket, "Wants a refund.\n*Reason:* VIP <!channel> & co")
    assert field_lines(blocks, "*Reason:*") == ["*Reason:* customer asked for a person"]
    [summary] = [b["text"]["text"] for b in blocks if "*Summary*" in b.get("text", {}).get(
        "text", "")]
    assert summary.split("\n")[1:] == [
        "> Wants a refund.", "> *Reason:* VIP &lt;!channel&gt; &amp; co"]
    assert "machine-written" in summary.split("\n")[0]
