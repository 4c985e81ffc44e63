"""How a `Reply` becomes Slack messages, and where it goes: conversation ids, Block Kit within
Slack's limits, and posting into the customer's thread."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots.layout import rows, split_text
from bots.ledger.payloads import fits, short_payloads
from bots.ledger.store import Ledger
from core.turn.messages import Reply

PLATFORM = "slack"
SECTION_CHARS = 3000  # text of one section block
BLOCKS_PER_MESSAGE = 50
BUTTONS_PER_ACTIONS = 5  # Slack allows 25; five keep a row readable
BUTTON_LABEL_CHARS = 75
BUTTON_VALUE_CHARS = 2000
ACTION_PREFIX = "concierge.button."


def slack_conversation_id(team: str, channel: str, thread_ts: str) -> str:
    """`slack:<team>:<channel>:<thread root ts>`: one conversation per thread."""
    return f"{PLATFORM}:{team}:{channel}:{thread_ts}"


def thread_of(conversation: str) -> tuple[str, str]:
    """(channel, thread ts) of a Slack conversation id."""
    platform, _team, channel, thread_ts = conversation.split(":")
    if platform != PLATFORM:
        raise ValueError(f"not a Slack conversation id: {conversation!r}")
    return channel, thread_ts


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

    Usable outside a turn, e.g. to relay a support agent's answer, from any process holding a
    Web API client and the shared ledger.
    """
    channel, thread_ts = thread_of(conversation)
    values = [b.payload for b in reply.buttons]
    if not all(fits(value, BUTTON_VALUE_CHARS) for value in values):
        values = await asyncio.to_thread(short_payloads, ledger, values, BUTTON_VALUE_CHARS)
    for blocks in reply_blocks(reply, values):
        await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=notification_text(blocks), blocks=blocks
        )
