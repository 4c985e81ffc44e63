"""How a `Reply` becomes Slack messages, and where it goes: conversation ids, Block Kit within
Slack's limits, and posting into the customer's thread.

In a channel thread each member has a conversation of their own
(`slack:<team>:<channel>:<thread ts>@<user>`): the ledger records whom each message with
buttons was for, and a private reply (orders, the account) goes to the member's direct messages,
with a notice in the thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots.channel import member_conversation, split_member
from bots.layout import rows, split_text
from bots.ledger.payloads import fits, short_payloads
from bots.ledger.store import Ledger, stored_key
from core.turn import replies
from core.turn.messages import Reply

PLATFORM = "slack"
SECTION_CHARS = 3000  # text of one section block
BLOCKS_PER_MESSAGE = 50
BUTTONS_PER_ACTIONS = 5  # Slack allows 25; five keep a row readable
BUTTON_LABEL_CHARS = 75
BUTTON_VALUE_CHARS = 2000
ACTION_PREFIX = "concierge.button."


def slack_conversation_id(
    team: str, channel: str, thread_ts: str, member: str | None = None
) -> str:
    """`slack:<team>:<channel>:<thread root ts>`: one conversation per thread (a DM's); in a
    channel, one member's conversation in the thread: `...@<user>`."""
    return member_conversation(f"{PLATFORM}:{team}:{channel}:{thread_ts}", member)


def thread_of(conversation: str) -> tuple[str, str]:
    """(channel, thread ts) of a Slack conversation id: where its messages are posted."""
    place, _member = split_member(conversation)
    platform, _team, channel, thread_ts = place.split(":")
    if platform != PLATFORM:
        raise ValueError(f"not a Slack conversation id: {conversation!r}")
    return channel, thread_ts


def thread_member(conversation: str) -> str | None:
    """The user whose conversation it is in a channel thread; None in a DM."""
    thread_of(conversation)  # a Slack conversation id, or ValueError
    return split_member(conversation)[1]


def owner_key(channel: str, ts: str) -> str:
    """The ledger key naming the member a posted message's buttons were for."""
    return f"{PLATFORM}:owner:{channel}:{ts}"


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def reply_blocks(reply: Reply, values: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Block Kit messages for one reply: sections of text, then the buttons, 50 blocks each."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in split_text(escape(reply.text), SECTION_CHARS)
    ]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": button.label[:BUTTON_LABEL_CHARS] or "?"},
            "action_id": f"{ACTION_PREFIX}{index}",  # unique within the message
            "value": value,
        }
        for index, (button, value) in enumerate(zip(reply.buttons, values, strict=True))
    ]
    blocks += [{"type": "actions", "elements": row} for row in rows(buttons, BUTTONS_PER_ACTIONS)]
    return [blocks[i : i + BLOCKS_PER_MESSAGE] for i in range(0, len(blocks), BLOCKS_PER_MESSAGE)]


def notification_text(blocks: list[dict[str, Any]]) -> str:
    """Notification text for a message: its sections, or a word when it only has buttons."""
    texts = [block["text"]["text"] for block in blocks if block["type"] == "section"]
    return "\n".join(texts)[:SECTION_CHARS] or "Choose:"


async def post_to_thread(
    client: AsyncWebClient, ledger: Ledger, conversation: str, reply: Reply
) -> None:
    """Post `reply` into a Slack conversation's thread as Block Kit.

    In a member's conversation in a channel, the ledger records whom messages with buttons were
    for, and a private reply goes to the member's DM instead, with a notice in the thread.
    Usable outside a turn, e.g. to relay a support agent's answer, from any process holding a
    Web API client and the shared ledger.
    """
    channel, thread_ts = thread_of(conversation)
    member = thread_member(conversation)
    if member is not None and reply.private:
        opened = await client.conversations_open(users=member)
        await _post(client, ledger, opened["channel"]["id"], None, reply)
        await _post(client, ledger, channel, thread_ts, Reply(replies.SENT_PRIVATELY))
        return
    posted = await _post(client, ledger, channel, thread_ts, reply)
    if member is not None and reply.buttons:
        for ts in posted:
            # A digest: the ledger need not name the member (nothing left after a deletion).
            await asyncio.to_thread(ledger.put, owner_key(channel, ts), stored_key(conversation))


async def _post(
    client: AsyncWebClient, ledger: Ledger, channel: str, thread_ts: str | None, reply: Reply
) -> list[str]:
    """Post `reply` in `channel` (in a thread, when `thread_ts`); the ts of each message."""
    values = [b.payload for b in reply.buttons]
    if not all(fits(value, BUTTON_VALUE_CHARS) for value in values):
        values = await asyncio.to_thread(short_payloads, ledger, values, BUTTON_VALUE_CHARS)
    posted = []
    for blocks in reply_blocks(reply, values):
        answer = await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=notification_text(blocks), blocks=blocks
        )
        posted.append(str(answer["ts"]))
    return posted
