"""The Slack adapter's real bolt app: signed HTTP events in, a stand-in Web API out (127.0.0.1)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from bots.ledger.redis import RedisLedger
from bots.ledger.store import stored_key
from bots.slack.customers import SlackAdapter, http_app, slack_adapter
from bots.slack.render import (
    BLOCKS_PER_MESSAGE,
    BUTTONS_PER_ACTIONS,
    SECTION_CHARS,
    owner_key,
    reply_blocks,
    slack_conversation_id,
    thread_member,
    thread_of,
)
from core.infra.settings import Settings
from core.turn import replies as wording
from core.turn.messages import Button, Reply
from tests.bots.conftest import BUTTONS, PRIVATE_TEXT, Clerk
from tests.bots.peers import (
    BOT_USER,
    TEAM,
    LoopThread,
    SlackWebApi,
    SocketModeServer,
    event_body,
    free_port,
    post_bytes,
    serve_on,
    settled,
    signed_headers,
    wait_for,
    wait_until,
)
from tests.conftest import redis_namespace

SECRET = "test-signing-secret"
REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture(scope="module")
def redis_ledger() -> Iterator[RedisLedger]:
    with redis_namespace("test-slack", REDIS_URL) as prefix:
        yield RedisLedger(REDIS_URL, prefix, ttl_s=3600)


@pytest.fixture(scope="module")
def api() -> Iterator[SlackWebApi]:
    stand_in = SlackWebApi().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def clerk() -> Clerk:
    return Clerk()


@pytest.fixture(scope="module")
def slack(api: SlackWebApi, clerk: Clerk, redis_ledger: RedisLedger) -> Iterator[str]:
    """The adapter in HTTP mode; yields the events URL."""
    port = free_port()
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=api.base_url,
        slack_port=port,
    )
    adapter = slack_adapter(settings, clerk, redis_ledger)
    loop = LoopThread()

    runner = loop.run(serve_on(http_app(adapter, settings), port))
    yield f"http://127.0.0.1:{port}{settings.slack_path}"
    loop.run(runner.cleanup())
    loop.close()


def deliver(url: str, body: dict[str, Any], retry: int | None = None) -> tuple[int, float]:
    """Post a signed event as Slack does; returns (status, seconds until the response)."""
    data = json.dumps(body).encode()
    headers = signed_headers(SECRET, data)
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    started = time.monotonic()
    status, _ = post_bytes(url, data, headers)
    return status, time.monotonic() - started


def press(url: str, payload: dict[str, Any]) -> int:
    data = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed_headers(SECRET, data, content_type="application/x-www-form-urlencoded")
    return post_bytes(url, data, headers)[0]


def mention(
    channel: str, ts: str, text: str, thread_ts: str | None = None, user: str = "U1"
) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "client_msg_id": f"msg-{channel}-{ts}",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    channel: str, ts: str, text: str, kind: str = "channel", **fields: Any
) -> dict[str, Any]:
    return {
        "type": "message",
        "user": "U1",
        "text": text,
        "ts": ts,
        "channel": channel,
        "channel_type": kind,
        "event_ts": ts,
        **fields,
    }


def posts(
    api: SlackWebApi, channel: str, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    return wait_for(lambda: api.posted(channel), count, timeout)


def test_mention_is_answered_in_its_thread_with_buttons(slack, api, clerk):
    status, _ = deliver(
        slack, event_body(mention("C1", "1700000000.000100", "red sneakers"), "Ev1")
    )
    assert status == 200
    [post] = posts(api, "C1", 1)
    assert post["thread_ts"] == "1700000000.000100"
    assert post["text"] == "You said: red sneakers"
    actions = [b for b in post["blocks"] if b["type"] == "actions"]
    values = [e["value"] for a in actions for e in a["elements"]]
    assert values == [b.payload for b in BUTTONS]
    [incoming] = [  # a channel: the member's own conversation in the thread
        i for i in clerk.seen if i.conversation_id == f"slack:{TEAM}:C1:1700000000.000100@U1"
    ]
    assert incoming.user_id == f"slack:{TEAM}:U1"
    assert incoming.platform == "slack" and incoming.text == "red sneakers"
    assert incoming.message_id == "msg-C1-1700000000.000100"


def test_follow_up_in_the_thread_needs_no_mention(slack, api, clerk):
    root = "1700000001.000100"
    deliver(slack, event_body(mention("C2", root, "hiking boots"), "Ev2"))
    posts(api, "C2", 1)
    deliver(
        slack, event_body(message("C2", "1700000009.000100", "anything else?"), "Ev3")
    )  # no thread
    deliver(
        slack,
        event_body(
            message("C2", "1700000010.000100", "other thread", thread_ts="1600000000.000001"), "Ev4"
        ),
    )
    deliver(
        slack, event_body(message("C2", "1700000011.000100", "cheaper?", thread_ts=root), "Ev5")
    )
    second = posts(api, "C2", 2)[1]
    assert second["thread_ts"] == root
    assert len(settled(lambda: api.posted("C2"))) == 2
    assert clerk.texts(f"slack:{TEAM}:C2:{root}@U1") == ["hiking boots", "cheaper?"]


def test_direct_message(slack, api, clerk):
    ts = "1700000020.000100"
    deliver(slack, event_body(message("D1", ts, "where is order 48213?", kind="im"), "Ev6"))
    [post] = posts(api, "D1", 1)
    assert post["thread_ts"] == ts
    assert clerk.texts(f"slack:{TEAM}:D1:{ts}") == ["where is order 48213?"]


def button_action(
    channel: str,
    root: str,
    message_ts: str,
    post: dict[str, Any],
    action_ts: str,
    user: str = "U1",
    index: int = 0,
) -> dict[str, Any]:
    """The block_actions payload Slack sends when `user` presses a button of `post`."""
    button = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]][index]
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "test"},
        "user": {"id": user, "team_id": TEAM},
        "api_app_id": "A0TEST",
        "token": "unused",
        "trigger_id": "t1",
        "channel": {"id": channel, "name": "shop"},
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "thread_ts": root,
        },
        "message": {
            "type": "message",
            "ts": message_ts,
            "thread_ts": root,
            "bot_id": "BBOT",
            "text": post["text"],
        },
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": "b1",
                "value": button["value"],
                "action_ts": action_ts,
                "text": button["text"],
            }
        ],
    }


def test_button_press_becomes_an_incoming_button(slack, api, clerk):
    root = "1700000030.000100"
    deliver(slack, event_body(mention("C3", root, "rain jacket"), "Ev7"))
    [post] = posts(api, "C3", 1)
    # A message the ledger has no record of: the presser's own conversation goes on.
    payload = button_action("C3", root, "1700000031.000001", post, "1700000032.000001")
    assert press(slack, payload) == 200
    follow_up = posts(api, "C3", 2)[1]
    assert follow_up["thread_ts"] == root
    assert follow_up["text"] == "You chose more:P0123:1"
    [pressed] = [i for i in clerk.seen if i.button and i.conversation_id.endswith(f":C3:{root}@U1")]
    assert pressed.button == "more:P0123:1" and pressed.user_id == f"slack:{TEAM}:U1"


def test_channel_members_have_conversations_of_their_own_in_a_thread(slack, api, clerk):
    root = "1700000100.000100"
    deliver(slack, event_body(mention("C7", root, "red sneakers"), "Ev20"))
    posts(api, "C7", 1)
    # Another member follows up in the thread the bot is in: no mention needed.
    follow_up = message("C7", "1700000101.000100", "a rain jacket", thread_ts=root, user="U2")
    deliver(slack, event_body(follow_up, "Ev21"))
    second = posts(api, "C7", 2)[1]
    assert second["thread_ts"] == root
    assert clerk.texts(f"slack:{TEAM}:C7:{root}@U1") == ["red sneakers"]
    assert clerk.texts(f"slack:{TEAM}:C7:{root}@U2") == ["a rain jacket"]
    assert not clerk.texts(f"slack:{TEAM}:C7:{root}")


def test_a_button_answers_only_the_member_it_was_for(slack, api, clerk):
    root = "1700000110.000100"
    deliver(slack, event_body(mention("C8", root, "hiking boots"), "Ev22"))
    [post] = posts(api, "C8", 1)
    [posted_ts] = api.posted_ts("C8")
    others = button_action("C8", root, posted_ts, post, "1700000111.000001", user="U2")
    assert press(slack, others) == 200
    [note] = wait_for(lambda: api.ephemeral("C8"), 1)
    assert (note["user"], note["thread_ts"]) == ("U2", root)
    assert note["text"] == wording.NOT_YOUR_BUTTON
    own = button_action("C8", root, posted_ts, post, "1700000112.000001", user="U1")
    assert press(slack, own) == 200
    assert posts(api, "C8", 2)[1]["text"] == "You chose more:P0123:1"
    assert len(settled(lambda: api.posted("C8"))) == 2
    assert len(api.ephemeral("C8")) == 1
    pressed = [i for i in clerk.seen if i.button and ":C8:" in i.conversation_id]
    assert [(i.conversation_id, i.user_id) for i in pressed] == [
        (f"slack:{TEAM}:C8:{root}@U1", f"slack:{TEAM}:U1")
    ]


def test_private_reply_in_a_channel_goes_to_the_members_dm(slack, api, clerk):
    root = "1700000120.000100"
    deliver(slack, event_body(mention("C9", root, "private", user="U3"), "Ev23"))
    [notice] = posts(api, "C9", 1)
    assert notice["thread_ts"] == root and notice["text"] == wording.SENT_PRIVATELY
    opened = [c["body"] for c in api.calls if c["method"] == "conversations.open"]
    assert {"users": "U3"}.items() <= opened[-1].items()
    [personal] = posts(api, "DU3", 1)
    assert personal["text"] == PRIVATE_TEXT and "thread_ts" not in personal
    assert [p["text"] for p in settled(lambda: api.posted("C9"))] == [wording.SENT_PRIVATELY]
    assert clerk.texts(f"slack:{TEAM}:C9:{root}@U3") == ["private"]


def test_private_reply_in_a_dm_is_sent_there(slack, api, clerk):
    ts = "1700000130.000100"
    deliver(slack, event_body(message("D5", ts, "private", kind="im"), "Ev24"))
    [personal] = posts(api, "D5", 1)
    assert personal["text"] == PRIVATE_TEXT and personal["thread_ts"] == ts


def test_retried_event_is_answered_once_and_acked_fast(slack, api, clerk):
    ts = "1700000040.000100"
    body = event_body(mention("C4", ts, "slow"), "Ev8")  # the turn takes 0.6 s
    status, seconds = deliver(slack, body)
    assert status == 200 and seconds < 0.5  # acknowledged before the turn finished
    assert deliver(slack, body, retry=1)[0] == 200
    # The same message also arrives as a `message` event (channel history subscription).
    deliver(slack, event_body(message("C4", ts, f"<@{BOT_USER}> slow"), "Ev9"))
    posts(api, "C4", 1)
    deliver(slack, body, retry=2)
    # A retry taken for a new message would reach the core at once (the clerk notes it before
    # its 0.6 s turn) and post after it: quiet for longer than one turn.
    conversation = f"slack:{TEAM}:C4:{ts}@U1"
    seen, posted = settled(lambda: (clerk.texts(conversation), len(api.posted("C4"))), 0.8)
    assert (seen, posted) == (["slow"], 1)


def test_messages_from_bots_and_edits_are_ignored(slack, api, clerk):
    deliver(
        slack,
        event_body(
            message(
                "D2",
                "1700000050.000100",
                "I am a bot",
                kind="im",
                bot_id="B999",
                subtype="bot_message",
            ),
            "Ev10",
        ),
    )
    deliver(
        slack,
        event_body(
            message("D2", "1700000051.000100", "edited", kind="im", subtype="message_changed"),
            "Ev11",
        ),
    )
    deliver(slack, event_body(message("D2", "1700000052.000100", "a person", kind="im"), "Ev12"))
    posts(api, "D2", 1)
    seen, posted = settled(
        lambda: ([i.text for i in clerk.seen if ":D2:" in i.conversation_id], api.posted("D2"))
    )
    assert seen == ["a person"] and len(posted) == 1


@pytest.mark.parametrize("case", ["bad signature", "stale timestamp", "missing headers"])
def test_unsigned_or_stale_requests_are_rejected(slack, api, clerk, case):
    body = json.dumps(event_body(message("D3", "1700000060.000100", "forged", kind="im"), "Ev13"))
    data = body.encode()
    if case == "bad signature":
        headers = signed_headers("not-the-secret", data)
    elif case == "stale timestamp":
        headers = signed_headers(SECRET, data, timestamp=int(time.time()) - 600)
    else:
        headers = {"Content-Type": "application/json"}
    assert post_bytes(slack, data, headers)[0] == 401
    seen, posted = settled(
        lambda: ([i for i in clerk.seen if ":D3:" in i.conversation_id], api.posted("D3")), 0.2
    )
    assert not posted and not seen


def test_rate_limited_post_is_retried_after_retry_after(slack, api):
    api.throttle("chat.postMessage", count=1, retry_after=1)
    deliver(slack, event_body(message("D4", "1700000070.000100", "hello", kind="im"), "Ev14"))
    [post] = posts(api, "D4", 1, timeout=15)
    assert post["text"] == "You said: hello"
    attempts = [
        c
        for c in api.calls
        if c["method"] == "chat.postMessage" and c["body"].get("channel") == "D4"
    ]
    assert [c["status"] for c in attempts] == [429, 200]
    assert attempts[1]["at"] - attempts[0]["at"] >= 1.0


def test_send_reply_outside_a_turn(api, redis_ledger):
    """What a support agent's relay uses: a reply pushed into a thread, no event behind it."""
    from bots.slack.customers import web_client
    from bots.slack.render import post_to_thread

    settings = Settings(slack_bot_token=SecretStr("xoxb-test"), slack_api_url=api.base_url)
    loop = LoopThread()
    reply = Reply("An agent here: your refund is on its way.", buttons=BUTTONS)
    try:
        conversation = f"slack:{TEAM}:C6:1700000090.000100"
        loop.run(post_to_thread(web_client(settings), redis_ledger, conversation, reply))
    finally:
        loop.close()
    [post] = posts(api, "C6", 1)
    assert post["thread_ts"] == "1700000090.000100" and post["text"] == reply.text
    assert post["blocks"][-1]["elements"][0]["value"] == BUTTONS[0].payload


def test_relayed_reply_reaches_a_members_conversation(api, redis_ledger):
    """An agent's reply to one member's conversation in a channel thread: posted in the thread,
    its buttons recorded as that member's."""
    from bots.slack.customers import web_client
    from bots.slack.render import post_to_thread

    settings = Settings(slack_bot_token=SecretStr("xoxb-test"), slack_api_url=api.base_url)
    conversation = f"slack:{TEAM}:C10:1700000140.000100@U4"
    loop = LoopThread()
    try:
        reply = Reply("An agent here: which size do you need?", buttons=BUTTONS)
        loop.run(post_to_thread(web_client(settings), redis_ledger, conversation, reply))
    finally:
        loop.close()
    [post] = posts(api, "C10", 1)
    assert post["thread_ts"] == "1700000140.000100" and post["text"] == reply.text
    [ts] = api.posted_ts("C10")
    assert redis_ledger.get(owner_key("C10", ts)) == stored_key(conversation)


def test_url_verification_challenge_is_answered(slack):
    data = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"}).encode()
    status, answer = post_bytes(slack, data, signed_headers(SECRET, data))
    assert status == 200 and answer == {"challenge": "c-123"}


def test_socket_mode_round_trip(api, redis_ledger):
    clerk = Clerk()
    loop = LoopThread()
    server = SocketModeServer(loop).start()
    api.socket_url = server.url
    settings = Settings(
        slack_mode="socket",
        slack_bot_token=SecretStr("xoxb-test"),
        slack_app_token=SecretStr("xapp-test"),
        slack_api_url=api.base_url,
    )
    adapter: SlackAdapter = slack_adapter(settings, clerk, redis_ledger)
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    async def connect() -> AsyncSocketModeHandler:
        handler = AsyncSocketModeHandler(adapter.app, "xapp-test")
        await handler.connect_async()
        return handler

    handler = loop.run(connect())
    try:
        assert server.connected.wait(10)
        opened = [c for c in api.calls if c["method"] == "apps.connections.open"]
        assert opened and opened[-1]["authorization"] == "Bearer xapp-test"
        ts = "1700000080.000100"
        envelope = {
            "envelope_id": "env-1",
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": event_body(mention("C5", ts, "socket hello"), "Ev15"),
        }
        server.push(envelope)
        wait_until(lambda: any(a.get("envelope_id") == "env-1" for a in server.acks))
        [post] = posts(api, "C5", 1)
        assert post["thread_ts"] == ts and post["text"] == "You said: socket hello"
        assert clerk.texts(f"slack:{TEAM}:C5:{ts}@U1") == ["socket hello"]
    finally:
        loop.run(handler.close_async())
        server.stop()
        loop.close()


def test_block_kit_stays_within_limits():
    many = tuple(Button("x" * 100, f"more:P{n:04d}:{n}") for n in range(30))
    messages = reply_blocks(Reply("word " * 40_000, buttons=many), [b.payload for b in many])
    blocks = [block for message in messages for block in message]
    assert all(len(message) <= BLOCKS_PER_MESSAGE for message in messages)
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(s["text"]["text"]) <= SECTION_CHARS for s in sections)
    actions = [b for b in blocks if b["type"] == "actions"]
    elements = [e for a in actions for e in a["elements"]]
    assert all(len(a["elements"]) <= BUTTONS_PER_ACTIONS for a in actions)
    assert len(elements) == 30 and all(len(e["text"]["text"]) <= 75 for e in elements)
    assert len({e["action_id"] for e in elements}) == 30
    assert messages[-1][-1]["type"] == "actions"  # buttons come after all the text


def test_text_is_escaped_for_mrkdwn():
    [[section]] = reply_blocks(Reply("a <b> & c"), [])
    assert section["text"]["text"] == "a &lt;b&gt; &amp; c"


def test_conversation_ids():
    assert thread_of("slack:T1:C1:1700000000.000100") == ("C1", "1700000000.000100")
    member = slack_conversation_id("T1", "C1", "1700000000.000100", "U7")
    assert member == "slack:T1:C1:1700000000.000100@U7"
    assert thread_of(member) == ("C1", "1700000000.000100")
    assert (thread_member(member), thread_member("slack:T1:D1:1.0")) == ("U7", None)
    with pytest.raises(ValueError):
        thread_of("telegram:1:2:3")
