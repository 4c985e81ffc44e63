"""The Slack bot process: customers and, when a support channel is set, the support desk, on one
bolt app. `concierge slack` or `python -m bots.slack`; HTTP Events API or Socket Mode, as
`CONCIERGE_SLACK_MODE` says."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial

from aiohttp import web

from bots.channel import threadsafe
from bots.envfile import settings_help
from bots.ledger.factory import open_ledger
from bots.shutdown import on_sigterm
from bots.slack.customers import (
    SlackAdapter,
    http_app,
    missing_setting,
    serve_socket_mode,
    slack_adapter,
)
from bots.slack.desk import slack_desk
from bots.slack.render import PLATFORM, post_to_thread
from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.store import customer_topic
from core.handover.escalation import SupportDesk
from core.infra import logs
from core.infra.commands import CommandHelp
from core.infra.health import serve as serve_health
from core.infra.settings import Settings
from core.turn.conversation import Conversation

log = logging.getLogger(__name__)


def install_handover(
    settings: Settings, conversation: Conversation, adapter: SlackAdapter
) -> Callable[[], list[Deliveries]]:
    """Wire the hand-over into a Slack bot process; returns `start`, to call on its event loop.

    Installs the support desk's listeners (when a support channel is configured) now; `start`
    begins delivering agents' replies to Slack customers and, with a desk, posting ticket news.
    """
    from bots.wiring import start_customer_deliveries

    desk = conversation.services.escalations
    if not isinstance(desk, SupportDesk):
        return lambda: []
    channel_desk = slack_desk(settings, desk, adapter.client)
    if channel_desk is not None:
        channel_desk.install(adapter.app)

    def start() -> list[Deliveries]:
        loops = []
        send = partial(post_to_thread, adapter.client, adapter.ledger)
        customers = start_customer_deliveries(
            settings,
            conversation,
            customer_topic(PLATFORM, f"{PLATFORM}:*"),
            threadsafe(send, asyncio.get_running_loop()),
        )
        if customers is not None:
            loops.append(customers)
        if channel_desk is not None:
            loops.append(channel_desk.start_news(settings.delivery_wait_s))
        return loops

    return start


def main(argv: Sequence[str] | None = None) -> int:
    """`concierge slack`: HTTP Events API or Socket Mode, as `CONCIERGE_SLACK_MODE` says."""
    argparse.ArgumentParser(
        prog="concierge slack", formatter_class=CommandHelp,
        description="Serve customers in Slack and, when CONCIERGE_SUPPORT_CHANNEL is set, the\n"
                    "support desk (agents answer escalated conversations in that channel).\n"
                    "CONCIERGE_SLACK_MODE=http (the default) receives the Events API on\n"
                    "CONCIERGE_SLACK_BIND_HOST:CONCIERGE_SLACK_PORT behind your TLS proxy and\n"
                    "needs CONCIERGE_SLACK_SIGNING_SECRET; socket opens a WebSocket to Slack\n"
                    "and needs CONCIERGE_SLACK_APP_TOKEN. Both need CONCIERGE_SLACK_BOT_TOKEN.\n"
                    "`concierge doctor --for slack` checks the settings first.",
        epilog=settings_help("slack_", "support_"),
    ).parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    missing = missing_setting(settings)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    from bots.wiring import build_conversation

    conversation = build_conversation(settings)
    adapter = slack_adapter(settings, conversation.handle, open_ledger(settings))
    start_handover = install_handover(settings, conversation, adapter)
    health = serve_health(settings, role="slack")  # /healthz and /metrics when metrics_port set
    loops: list[Deliveries] = []

    def start() -> None:
        loops.extend(start_handover())
        adapter.intake.start_replay()  # messages a process that died left unanswered

    async def drain() -> None:
        """SIGTERM, once no new event comes in: the turns in flight finish and reply (bounded),
        agents' replies stop being relayed."""
        if health is not None:
            health.drain()
        await adapter.intake.drain(settings.shutdown_grace_s)
        for loop in loops:
            await asyncio.to_thread(loop.stop)

    if settings.slack_mode == "socket":
        logs.event(log, "slack.socket_mode")

        async def serve() -> None:
            start()
            stopping = asyncio.Event()

            async def stop() -> None:
                stopping.set()

            on_sigterm(stop)
            socket = asyncio.create_task(serve_socket_mode(adapter, settings))
            requested = asyncio.create_task(stopping.wait())
            await asyncio.wait((socket, requested), return_when=asyncio.FIRST_COMPLETED)
            socket.cancel()  # no new events
            with contextlib.suppress(asyncio.CancelledError):
                await socket
            requested.cancel()
            await drain()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
        logs.event(log, "slack.stopped")
        return 0
    logs.event(log, "slack.http", host=settings.slack_bind_host, port=settings.slack_port)
    application = http_app(adapter, settings)

    async def on_startup(_: web.Application) -> None:
        start()

    async def on_shutdown(_: web.Application) -> None:
        await drain()  # aiohttp stopped listening (SIGTERM): the turns in flight finish

    application.on_startup.append(on_startup)
    application.on_shutdown.append(on_shutdown)
    web.run_app(application, host=settings.slack_bind_host, port=settings.slack_port)
    logs.event(log, "slack.stopped")
    return 0
