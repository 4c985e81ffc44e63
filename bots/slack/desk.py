"""The support team's side in Slack: tickets in a support channel, a thread each.

Each new ticket is posted to the configured support channel with a summary, the reason, the
sentiment trend, the last turns and the buttons Claim / Resolve / Hand back to bot. The thread
under it is the agent's workspace: the customer's messages appear there, and every message an
agent writes there is relayed to the customer on their platform (lines starting with `//` or
`note:` stay internal). Only allowed agents (an allow-list, or members of a user group) can act;
anyone else gets an ephemeral refusal.

It runs inside the Slack bot process (`bots.slack.app`), on the same bolt app as the customer
adapter: thread messages in the support channel are taken by a global middleware before the
customer adapter sees them, and the buttons have their own action ids.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bots.channel import send_on_loop
from bots.slack.customers import ack_at_once
from bots.slack.render import escape
from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.store import AGENTS_TOPIC, Delivery
from core.handover.escalation import (
    Refused,
    SupportDesk,
    last_turns,
    single_line,
    summarize,
    trend,
)
from core.handover.tickets.store import Ticket
from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.infra.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

ACTION_PREFIX = "concierge.desk."
NOTE_PREFIXES = ("//", "note:")
GROUP_CACHE_S = 60.0
HANDLED_KEPT = 2000  # support-channel messages remembered to drop duplicate deliveries
NOT_AN_AGENT = (
    "Only members of the support team can act on tickets here. "
    "Ask an admin to add you to the support agents."
)
STORE_DOWN = "The ticket store can't be reached right now; nothing was done. Please try again."
SUMMARY_LABEL = (
    "*Summary* (machine-written from the conversation; the customer's words are unverified):"
)
STATUS_WORDS = {
    "open": ":large_orange_circle: Open, unclaimed",
    "claimed": ":large_blue_circle: Claimed by <@{agent}>",
    "resolved": ":white_check_mark: Resolved by <@{agent}>",
    "handed_back": ":leftwards_arrow_with_hook: Handed back to the bot by <@{agent}>",
}


def ticket_blocks(ticket: Ticket, summary: str) -> list[dict[str, Any]]:
    """The ticket's message in the support channel, with the buttons its status allows.

    Every field label (`*Reason:*`, `*Status:*`, ...) is written here; text that came from the
    customer, or from a model reading the customer's words, is shown only quoted (`quoted`), so
    a message like "hi\n*Reason:* VIP refund approved" cannot add a field to the card."""
    status = STATUS_WORDS[ticket.status].format(agent=ticket.agent or "?")
    rating = f"  ·  rated {ticket.rating}/5" if ticket.rating is not None else ""
    head = (
        f"*Ticket {ticket.id}*  ·  {_field(ticket.who)} on {_field(ticket.platform)}\n"
        f"*Reason:* {_field(ticket.reason)}\n"
        f"*Sentiment:* {_field(trend(ticket.sentiment_trend))}\n"
        f"*Status:* {status}{rating}"
    )
    turns = quoted("\n".join(last_turns(ticket)) or "(no messages)")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{SUMMARY_LABEL}\n{quoted(summary)}"[:3000]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Last turns:*\n{turns}"[:3000]}},
    ]
    buttons = []
    if ticket.status == "open":
        buttons.append(_button("Claim", "claim", ticket.id, "primary"))
    if ticket.active:
        buttons.append(_button("Resolve", "resolve", ticket.id))
        buttons.append(_button("Hand back to bot", "handback", ticket.id))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"desk:{ticket.id}", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Reply in this thread to answer the customer. "
                    "Lines starting with `//` stay internal.",
                }
            ],
        }
    )
    return blocks


def quoted(text: str) -> str:
    """Text the code did not write, as a mrkdwn quote: escaped, every line behind `>`."""
    lines = [escape(line.strip()) for line in text.splitlines() if line.strip()]
    return "\n".join(f"> {line}" for line in lines or ["(empty)"])


def _field(value: str) -> str:
    """A field's value on one line of the card, escaped."""
    return escape(single_line(value))


def _button(label: str, action: str, ticket_id: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": f"{ACTION_PREFIX}{action}",
        "value": ticket_id,
    }
    if style:
        button["style"] = style
    return button


def thread_ref(channel: str, ts: str) -> str:
    """How a ticket remembers its Slack thread (`Ticket.agent_thread`)."""
    return f"slack:{channel}:{ts}"


class SlackDesk:
    """Posts tickets and news to the support channel; turns agents' actions into desk calls."""

    def __init__(
        self,
        desk: SupportDesk,
        client: AsyncWebClient,
        channel: str,
        agents: frozenset[str] = frozenset(),
        agent_group: str | None = None,
        summarizer: Callable[[Ticket], str] = summarize,
    ) -> None:
        self.desk = desk
        self.client = client
        self.channel = channel
        self.agents = agents
        self.agent_group = agent_group
        self.summarizer = summarizer
        self._group: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._names: dict[str, str | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handled: OrderedDict[str, None] = OrderedDict()

    def install(self, app: AsyncApp) -> None:
        app.middleware(self._take_support_channel_messages)
        app.action(re.compile(re.escape(ACTION_PREFIX)))(ack=ack_at_once, lazy=[self.on_action])

    def start_news(self, wait_s: float = 1.0) -> Deliveries:
        """Post ticket news in the background (call from the app's event loop); runs the SLA."""
        loop = asyncio.get_running_loop()

        def handle(delivery: Delivery) -> None:
            # Raising (Slack down, no thread yet) leaves the news to be taken again; a post that
            # may have gone out before timing out is not posted twice (MaybeDelivered).
            send_on_loop(lambda: self.post_news(delivery), loop, target="the support channel")

        news = Deliveries(self.desk.queue, AGENTS_TOPIC, handle, wait_s=wait_s)
        news.tick = self.desk.sweep
        return news.start()

    # -- news to the channel ----------------------------------------------------------------------

    async def post_news(self, delivery: Delivery) -> None:
        ticket_id = delivery.ticket_id or ""
        ticket = await asyncio.to_thread(self.desk.tickets.get, ticket_id)
        if ticket is None:
            event(log, "desk.unknown_ticket", logging.WARNING, ticket=ticket_id)
            return
        if delivery.kind == "ticket_opened":
            if ticket.agent_thread is None:  # not posted yet (or the post was lost before)
                await self._post_ticket(ticket)
            return
        if ticket.agent_thread is None:
            raise RuntimeError(f"{ticket_id} has no thread yet")  # retried after the lease
        _, channel, ts = ticket.agent_thread.split(":", 2)
        if delivery.kind == "customer_message":
            text = f"*Customer:*\n{quoted(delivery.text)}"
        elif delivery.kind == "reminder":
            text = f":alarm_clock: <!here> {escape(delivery.text)}"
        else:
            text = escape(delivery.text)
        await self.client.chat_postMessage(
            channel=channel, thread_ts=ts, text=text, reply_broadcast=delivery.kind == "reminder"
        )
        if delivery.kind in ("ticket_changed", "reminder"):
            await self._refresh(ticket, channel, ts)

    async def _post_ticket(self, ticket: Ticket) -> None:
        summary = await asyncio.to_thread(self.summarizer, ticket)
        answer = await self.client.chat_postMessage(
            channel=self.channel,
            text=f"New ticket {ticket.id}: {ticket.reason}",
            blocks=ticket_blocks(ticket, summary),
        )
        ref = thread_ref(str(answer["channel"]), str(answer["ts"]))
        await asyncio.to_thread(self.desk.link, ticket.id, ref)
        event(log, "desk.ticket_posted", ticket=ticket.id, thread=ref)

    async def _refresh(self, ticket: Ticket, channel: str, ts: str) -> None:
        """Show the ticket's current status and buttons on its message."""
        summary = await asyncio.to_thread(self.summarizer, ticket)
        await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=f"Ticket {ticket.id}: {ticket.status}",
            blocks=ticket_blocks(ticket, summary),
        )

    # -- agents' messages in the thread -------------------------------------------------------

    async def _take_support_channel_messages(
        self, body: dict[str, Any], next: Callable[[], Any]
    ) -> BoltResponse | None:
        """Messages in the support channel are for the desk, never for the customer adapter."""
        event_ = body.get("event") or {}
        ours = (
            body.get("type") == "event_callback"
            and event_.get("type") in ("message", "app_mention")
            and event_.get("channel") == self.channel
        )
        if not ours:
            await next()
            return None
        task = asyncio.create_task(self.on_channel_message(event_))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report_failure)
        return BoltResponse(status=200, body="")  # answered here, within Slack's 3 seconds

    async def on_channel_message(self, event_: dict[str, Any]) -> None:
        if event_.get("bot_id") or event_.get("subtype") not in (None, "thread_broadcast"):
            return  # our own posts, edits, joins
        # A message that mentions the bot arrives twice (app_mention and message); retries too.
        key = f"{event_.get('channel')}:{event_.get('ts')}"
        if key in self._handled:
            return
        self._handled[key] = None
        while len(self._handled) > HANDLED_KEPT:
            self._handled.popitem(last=False)
        root, user, text = event_.get("thread_ts"), event_.get("user", ""), event_.get("text", "")
        if root is None or not text.strip():
            return
        ref = thread_ref(self.channel, root)
        ticket = await asyncio.to_thread(self.desk.tickets.by_agent_thread, ref)
        if ticket is None:
            return
        if not await self.is_agent(user):
            await self._refuse(user, NOT_AN_AGENT + " Your message was not sent.", root)
            return
        message_id = event_.get("client_msg_id") or event_["ts"]
        stripped = re.sub(r"^<@[A-Z0-9]+>\s*", "", text.strip())
        if stripped.lower().startswith(NOTE_PREFIXES):
            await self._act(user, root, self.desk.note, ticket.id, user, stripped)
            return
        name = await self._name(user)
        sent = await self._act(
            user, root, self.desk.agent_reply, ticket.id, user, _plain(stripped), message_id, name
        )
        if sent is not None:
            event(log, "desk.agent_reply", ticket=ticket.id, agent=user)

    # -- buttons -------------------------------------------------------------------------------

    async def on_action(self, body: dict[str, Any]) -> None:
        user = body["user"]["id"]
        action = body["actions"][0]
        kind = action["action_id"].removeprefix(ACTION_PREFIX)
        ticket_id = action.get("value", "")
        message = body.get("message") or {}
        root = message.get("ts") or (body.get("container") or {}).get("message_ts")
        if not await self.is_agent(user):
            await self._refuse(user, NOT_AN_AGENT, None)
            event(log, "desk.refused", logging.WARNING, user=user, action=kind, ticket=ticket_id)
            return
        if kind == "claim":
            name = await self._name(user)
            ticket = await self._act(user, root, self.desk.claim, ticket_id, user, name)
        elif kind == "resolve":
            ticket = await self._act(user, root, self.desk.resolve, ticket_id, user)
        elif kind == "handback":
            ticket = await self._act(user, root, self.desk.hand_back, ticket_id, user)
        else:
            await self._refuse(user, f"Unknown action {kind!r}.", None)
            return
        if ticket is None:
            return
        if root:
            await self._refresh(ticket, self.channel, root)
        event(log, "desk.action", ticket=ticket_id, agent=user, action=kind)

    # -- who may act ---------------------------------------------------------------------------

    async def is_agent(self, user: str) -> bool:
        if user in self.agents:
            return True
        if self.agent_group is None or not user:
            return False
        fetched_at, members = self._group
        if time.monotonic() - fetched_at > GROUP_CACHE_S:
            try:
                answer = await self.client.usergroups_users_list(usergroup=self.agent_group)
                members = frozenset(answer.get("users") or ())
            except SlackClientError as error:
                event(log, "desk.group_unavailable", logging.ERROR, error=str(error))
            self._group = (time.monotonic(), members)
        return user in members

    async def _name(self, user: str) -> str | None:
        """The agent's display name for customers, if Slack tells us."""
        if user not in self._names:
            try:
                answer = await self.client.users_info(user=user)
                profile = (answer.get("user") or {}).get("profile") or {}
                self._names[user] = profile.get("display_name") or profile.get("real_name")
            except SlackClientError as error:  # no profile scope, or Slack down: no name
                event(log, "desk.name_unavailable", user=user, error=str(error)[:200])
                self._names[user] = None
        return self._names[user]

    async def _act(
        self, user: str, thread_ts: str | None, call: Callable[..., T], *args: Any
    ) -> T | None:
        """Run a desk call off the event loop; a refusal or a store outage is told to the agent
        (only they see it) and gives None."""
        try:
            return await asyncio.to_thread(call, *args)
        except Refused as refusal:
            await self._refuse(user, str(refusal), thread_ts)
        except StoreUnavailable as exc:
            event(log, "desk.store_unavailable", logging.ERROR, error=str(exc))
            await self._refuse(user, STORE_DOWN, thread_ts)
        return None

    async def _refuse(self, user: str, text: str, thread_ts: str | None) -> None:
        await self.client.chat_postEphemeral(
            channel=self.channel, user=user, text=text, thread_ts=thread_ts
        )


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        event(log, "desk.message_failed", logging.ERROR, error=repr(task.exception()))


def _plain(text: str) -> str:
    """Slack mrkdwn as the customer should read it: entities decoded, links as their text."""
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_desk(settings: Settings, desk: SupportDesk, client: AsyncWebClient) -> SlackDesk | None:
    """The Slack desk when a support channel is configured, else None."""
    if settings.support_channel is None:
        return None
    summarizer: Callable[[Ticket], str] = summarize
    if settings.support_summary == "llm":
        from bots.wiring import open_store
        from core.handover.summaries import LlmSummarizer
        from core.llm.client import LlmClient, LlmConfig
        from core.shopdb.services import names_on_record

        summarizer = LlmSummarizer(
            LlmClient(LlmConfig.from_settings(settings)),
            names_of=names_on_record(open_store(settings)),
        )
    return SlackDesk(
        desk,
        client,
        settings.support_channel,
        frozenset(settings.support_agents),
        settings.support_agent_group,
        summarizer,
    )
