"""Simulated customers: each one writes, waits for the answer, thinks, and writes again.

A customer talks through one platform: Telegram (the emulator, as a Telegram user would), Slack
(signed Events API requests to the Slack process, as Slack would send them) or the terminal core
(`Conversation.handle` in this process, as `concierge chat` runs it). Some ask for a person and
then wait for the agent's replies and the hand-back. The flooder writes 100 messages a second
without waiting. What each sent is kept as a `Sent`; what the platforms received is read back
from the stand-ins at the end (`bots.loadtest.harness`), so the waiting here only paces them.

The phrases are kept apart from data/nlu/intents.yaml (a customer does not type the examples).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bots.loadtest.checks import Sent
from bots.loadtest.peers import TEAM, event_body
from core.turn import replies
from core.turn.conversation import Conversation
from core.turn.messages import CollectingOutbox, Incoming, Reply

SHOPPING = (
    "hey there, I'm after a light jacket for spring evenings",
    "something cheaper please, under 60 dollars",
    "do any of these come in blue?",
    "what material is the first one made of?",
)
ORDERS = (
    "hello",
    "can you check where my parcel is, order 10023",
    "how long does standard delivery take to Lyon?",
    "thanks, that helps",
)
POLICY = (
    "what's your policy if a sweater doesn't fit?",
    "do you take paypal?",
    "how do I change the email on my profile?",
)
ESCALATION = (
    "hi, my package arrived damaged and the box was soaked",
    "please let me speak with a human being",
)
SCRIPTS = (SHOPPING, ORDERS, POLICY)
AGENT_MARK = "[ref "
TURN_TIMEOUT_S = 30.0  # a message unanswered this long: move on (the final count says lost)
AGENT_WAIT_S = 30.0  # an escalated customer waits this long for the agent and the hand-back
FLOOD_TEXT = "hello?? anyone there"


class Channel(Protocol):
    """How one customer reaches the assistant."""

    platform: str

    @property
    def conversation_id(self) -> str: ...

    async def say(self, text: str) -> Sent:
        """Send `text`; wait (at most TURN_TIMEOUT_S) for an answer to it."""
        ...

    async def send_only(self, text: str) -> Sent:
        """Send `text` and return at once (the flooder)."""
        ...

    def inbox(self) -> list[str]:
        """Every text this customer received so far (turn answers and agent replies)."""
        ...


@dataclass
class TelegramInbox:
    """The bots' messages to the simulated Telegram customers, by (bot token, chat), read from
    the emulator by one long poll per bot (`watch`): customers wait on an event, as they do on
    `SlackInbox`, instead of each polling the emulator (which cost more CPU than the bot)."""

    session: aiohttp.ClientSession
    emulator_url: str
    messages: dict[tuple[str, int], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list))
    arrived: dict[tuple[str, int], asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event))

    @contextlib.asynccontextmanager
    async def watching(self, tokens: Sequence[str]) -> AsyncIterator[TelegramInbox]:
        """This inbox, filled by a `watch` of each bot token meanwhile."""
        watchers = [asyncio.create_task(self.watch(token)) for token in tokens]
        try:
            yield self
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    async def watch(self, token: str) -> None:
        """Take `token`'s new messages as they come, until cancelled. A failed read only slows
        the customers waiting for them: what was sent is read back from the emulator's history
        at the end."""
        body = {"token": token, "timeout": WATCH_S}
        while True:
            try:
                async with self.session.post(f"{self.emulator_url}/control/replies",
                                             json=body) as answer:
                    result = (await answer.json())["result"]
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            for update in result:
                message = update["message"]
                key = (token, int(message["chat_id"]))
                self.messages[key].append(message)
                self.arrived[key].set()


WATCH_S = 5.0  # each long poll of the emulator is held this long at most


@dataclass
class TelegramChannel:
    """A Telegram user in a private chat with one bot, through the emulator's client API."""

    session: aiohttp.ClientSession
    emulator_url: str
    token: str
    user_id: int
    mailbox: TelegramInbox
    platform: str = "telegram"

    @property
    def conversation_id(self) -> str:
        return f"telegram:{self.user_id}"

    @property
    def received(self) -> list[dict[str, Any]]:
        """The bot's messages to this chat so far."""
        return self.mailbox.messages[(self.token, self.user_id)]

    async def send_only(self, text: str) -> Sent:
        message = {
            "botToken": self.token,
            "from": {"id": self.user_id, "is_bot": False, "first_name": f"Load{self.user_id}"},
            "chat": {"id": self.user_id, "type": "private", "first_name": f"Load{self.user_id}"},
            "date": int(time.time()),
            "text": text,
        }
        sent = Sent("telegram", self.conversation_id, "", text, time.time())
        async with self.session.post(f"{self.emulator_url}/sendMessage", json=message) as answer:
            answer.raise_for_status()
        return sent

    async def say(self, text: str) -> Sent:
        """Send `text`; wait for the bot's answer to it (a message replying to another)."""
        seen = len(self.received)
        sent = await self.send_only(text)
        deadline = time.monotonic() + TURN_TIMEOUT_S
        arrived = self.mailbox.arrived[(self.token, self.user_id)]
        while not any("reply_parameters" in m for m in self.received[seen:]):
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return sent

    def inbox(self) -> list[str]:
        return [str(m.get("text", "")) for m in self.received]


@dataclass
class SlackInbox:
    """Posts the Slack stand-in answered, per DM channel, woken as they arrive."""

    loop: asyncio.AbstractEventLoop
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    arrived: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))

    def hear(self, call: dict[str, Any]) -> None:
        """A SlackWebApi listener (runs on the stand-in's thread)."""
        if call["method"] != "chat.postMessage" or call["status"] != 200:
            return
        channel = str(call["body"].get("channel", ""))
        self.loop.call_soon_threadsafe(self._add, channel, call)

    def _add(self, channel: str, call: dict[str, Any]) -> None:
        self.posts[channel].append(call)
        self.arrived[channel].set()


@dataclass
class SlackChannel:
    """A Slack user in a DM with the app: signed events posted to the Slack process."""

    session: aiohttp.ClientSession
    events_url: str
    signing_secret: str
    user: str
    mailbox: SlackInbox
    platform: str = "slack"
    root: str | None = None  # the thread the conversation lives in (a DM's first message)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def channel(self) -> str:
        return f"D{self.user}"

    @property
    def conversation_id(self) -> str:
        """One conversation per thread: the customer writes on in the thread they started."""
        return f"slack:{TEAM}:{self.channel}:{self.root}"

    async def send_only(self, text: str) -> Sent:
        ts = f"{time.time():.4f}{next(self._counter) % 100:02d}"
        event = {
            "type": "message", "channel_type": "im", "channel": self.channel, "user": self.user,
            "text": text, "ts": ts, "event_ts": ts, "client_msg_id": str(uuid.uuid4()),
        }
        if self.root is None:
            self.root = ts
        else:
            event["thread_ts"] = self.root
        data = json.dumps(event_body(event, f"Ev{uuid.uuid4().hex[:12]}")).encode()
        sent = Sent("slack", self.user, ts, text, time.time())
        for attempt in range(4):  # Slack retries a failed delivery three times
            stamp = str(int(time.time()))
            base = b"v0:" + stamp.encode() + b":" + data
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": "v0="
                + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest(),
            }
            if attempt:
                headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
            try:
                async with self.session.post(self.events_url, data=data, headers=headers) as answer:
                    if answer.status < 500:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1.0)
        return sent

    async def say(self, text: str) -> Sent:
        sent = await self.send_only(text)
        deadline = time.monotonic() + TURN_TIMEOUT_S
        arrived = self.mailbox.arrived[self.channel]
        while time.monotonic() < deadline:
            if any(
                c["body"].get("thread_ts") == self.root and c["at"] >= sent.sent_at
                for c in self.mailbox.posts[self.channel]
            ):
                break
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return sent

    def inbox(self) -> list[str]:
        return [str(c["body"].get("text", "")) for c in self.mailbox.posts[self.channel]]


@dataclass
class TerminalChannel:
    """A terminal chat: the core's `Conversation.handle` in this process, as `concierge chat`."""

    conversation: Conversation
    pool: ThreadPoolExecutor
    user: str
    platform: str = "terminal"
    turns: int = 0
    received: list[str] = field(default_factory=list)
    conversation_id: str = ""

    def __post_init__(self) -> None:
        if not self.conversation_id:
            self.conversation_id = f"terminal:{self.user}:{uuid.uuid4().hex[:8]}"

    def deliver(self, conversation_id: str, reply: Reply) -> None:
        """An agent's reply, from the delivery loop's thread."""
        self.received.append(reply.text)

    async def send_only(self, text: str) -> Sent:
        return await self.say(text)

    async def say(self, text: str) -> Sent:
        self.turns += 1
        sent = Sent("terminal", self.user, f"t{self.turns}", text, time.time())
        incoming = Incoming(self.conversation_id, self.user, text=text, message_id=sent.key)
        outbox = CollectingOutbox()

        def turn() -> float:
            self.conversation.handle(incoming, outbox)
            return time.time()

        done = await asyncio.get_running_loop().run_in_executor(self.pool, turn)
        sent.replies = [(reply.text, done) for reply in outbox.replies]
        self.received += [reply.text for reply in outbox.replies]
        return sent

    def inbox(self) -> list[str]:
        return list(self.received)


@dataclass
class SimulatedCustomer:
    """One simulated customer on one channel, following scripts until `stop` is set."""

    name: str
    channel: Channel
    rng: random.Random
    think_s: tuple[float, float] = (0.3, 1.5)
    escalates: bool = False
    sent: list[Sent] = field(default_factory=list)
    escalated_at: float | None = None
    agent_seen: bool = False  # the agent's replies and the hand-back arrived

    async def run(
        self, stop: asyncio.Event, on_escalate: Callable[[SimulatedCustomer], None]
    ) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.think_s[1] * 2))  # not all at once
        if self.escalates:
            await self._escalate(stop, on_escalate)
        while not stop.is_set():
            for text in self.rng.choice(SCRIPTS):
                if stop.is_set():
                    return
                self.sent.append(await self.channel.say(text))
                await asyncio.sleep(self.rng.uniform(*self.think_s))

    async def _escalate(
        self, stop: asyncio.Event, on_escalate: Callable[[SimulatedCustomer], None]
    ) -> None:
        for text in ESCALATION:
            self.sent.append(await self.channel.say(text))
            await asyncio.sleep(self.rng.uniform(*self.think_s))
        self.escalated_at = time.time()
        on_escalate(self)
        deadline = time.monotonic() + AGENT_WAIT_S
        while time.monotonic() < deadline and not stop.is_set():
            inbox = self.channel.inbox()
            if any(replies.HANDED_BACK in text for text in inbox):
                self.agent_seen = True
                return
            await asyncio.sleep(0.3)


async def flood(channel: Channel, stop: asyncio.Event, per_s: float, until: float) -> list[Sent]:
    """One customer sending `per_s` messages a second, not waiting for answers, until `until`."""
    sent: list[Sent] = []
    gap = 1.0 / per_s
    next_at = time.monotonic()
    while not stop.is_set() and time.time() < until:
        try:
            message = await channel.send_only(f"{FLOOD_TEXT} #{len(sent) + 1}")
        except aiohttp.ClientError:
            continue
        message.flood = True
        sent.append(message)
        next_at += gap
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent
