"""`concierge link ...` and `concierge privacy ...`: customers' identities and data rights.

    concierge link issue C0009          # a link for a signed-in customer: deep link and token
    concierge link serve                # the same over HTTP for the shop's backend (API key)
    concierge privacy export --user telegram:1001 --out held.json
    concierge privacy delete --user telegram:1001     # or a customer id: every linked user
    concierge privacy purge             # retention: expired transcripts, tickets and proofs

The shop's website shows a signed-in customer a "chat with us" link holding a fresh token; the
chat that opens it is linked to that customer and may see their orders.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.infra.commands import CommandHelp
from core.infra.logs import configure, event
from core.infra.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from core.identity.accounts import Accounts, Issued
    from core.identity.rights import DataRights

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096


def _accounts(settings: Settings) -> Accounts:
    from bots.wiring import build_accounts, open_store

    database = open_store(settings)
    database.check_ready()  # StoreNotReady says what to run
    return build_accounts(settings, database)


def deep_link(settings: Settings, token: str) -> str | None:
    """`https://t.me/<bot>?start=<token>`, when the bot's username is configured."""
    name = (settings.telegram_bot_username or "").lstrip("@")
    return f"https://t.me/{name}?start={token}" if name else None


def _issued_json(settings: Settings, issued: Issued) -> dict[str, Any]:
    return {
        "customer_id": issued.customer_id,
        "token": issued.token,
        "expires_at": issued.expires_at.isoformat(),
        "telegram_url": deep_link(settings, issued.token),
        "chat_message": f"link {issued.token}",
    }


def link_issue_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    from core.identity.accounts import UnknownCustomer

    parser = argparse.ArgumentParser(
        prog="concierge link issue", formatter_class=CommandHelp,
        description="Issue a single-use link token for a customer the shop has signed in.\n"
                    "Prints the Telegram deep link (CONCIERGE_TELEGRAM_BOT_USERNAME), the\n"
                    "message for Slack or the terminal chat, and on the last line the token.")
    parser.add_argument("customer_id", help="the store customer's id")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    accounts = _accounts(settings)
    try:
        issued = accounts.issue(args.customer_id, datetime.now(UTC))
    except UnknownCustomer:
        print(f"concierge link issue: no customer {args.customer_id!r} in the store",
              file=sys.stderr)
        return 2
    url = deep_link(settings, issued.token)
    print(f"Link for customer {issued.customer_id}, single use, valid until "
          f"{issued.expires_at:%Y-%m-%d %H:%M} UTC:")
    print(f"  Telegram: {url}" if url else
          "  Telegram: set CONCIERGE_TELEGRAM_BOT_USERNAME for the deep link")
    print(f"  Slack or the terminal chat: send \"link {issued.token}\"")
    print(issued.token)
    return 0


def link_app(settings: Settings, accounts: Accounts) -> web.Application:
    """POST /links {"customer_id": ...} with `Authorization: Bearer <CONCIERGE_LINK_API_KEY>`
    -> 201 {"token", "expires_at", "telegram_url", "chat_message", "customer_id"}."""
    from aiohttp import web

    from core.identity.accounts import UnknownCustomer

    assert settings.link_api_key is not None
    expected = f"Bearer {settings.link_api_key.get_secret_value()}".encode()

    def refuse(status: int, error: str) -> web.Response:
        return web.json_response({"error": error}, status=status)

    async def issue(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            event(log, "link.api_refused", remote=request.remote)
            return refuse(401, "missing or wrong API key (Authorization: Bearer ...)")
        try:
            body = await request.json()
        except (ValueError, web.HTTPException):
            return refuse(400, "the body must be JSON: {\"customer_id\": \"...\"}")
        customer = body.get("customer_id") if isinstance(body, dict) else None
        if not isinstance(customer, str) or not customer.strip():
            return refuse(400, "customer_id (a string) is required")
        try:
            issued = accounts.issue(customer.strip(), datetime.now(UTC))
        except UnknownCustomer:
            return refuse(404, "no such customer in the store")
        return web.json_response(_issued_json(settings, issued), status=201)

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_post("/links", issue)
    return app


def link_serve_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    argparse.ArgumentParser(
        prog="concierge link serve", formatter_class=CommandHelp,
        description="Serve POST /links for the shop's backend on CONCIERGE_LINK_API_HOST:\n"
                    "CONCIERGE_LINK_API_PORT, authenticated by CONCIERGE_LINK_API_KEY (a\n"
                    "bearer token). Put it behind your TLS proxy; keep it off the internet.",
    ).parse_args(argv)
    from aiohttp import web

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    if settings.link_api_key is None:
        print("concierge link serve: set CONCIERGE_LINK_API_KEY (the shop's backend sends it "
              "as a bearer token)", file=sys.stderr)
        return 2
    app = link_app(settings, _accounts(settings))
    event(log, "link.serving", host=settings.link_api_host, port=settings.link_api_port)
    web.run_app(app, host=settings.link_api_host, port=settings.link_api_port, print=None)
    return 0


# -- privacy -----------------------------------------------------------------------------------


def _rights(settings: Settings) -> DataRights:
    from bots.wiring import build_data_rights

    return build_data_rights(settings, _accounts(settings))


def privacy_export_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge privacy export", formatter_class=CommandHelp,
        description="Write everything held about a person as JSON: their link, feedback\n"
                    "events, conversations (with transcripts) and support tickets.")
    parser.add_argument("--user", required=True,
                        help="the platform user (telegram:1001, slack:T1:U1) or terminal user")
    parser.add_argument("--out", type=Path, default=None, help="file to write; default stdout")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    held = json.dumps(_rights(settings).export(args.user), indent=2, ensure_ascii=False)
    if args.out is None:
        print(held)
    else:
        args.out.write_text(held + "\n", encoding="utf-8")
        print(f"wrote what is held about {args.user} to {args.out}", file=sys.stderr)
    return 0


def privacy_delete_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge privacy delete", formatter_class=CommandHelp,
        description="Delete what is held about a person: conversations, ticket transcripts,\n"
                    "feedback events and links; anonymised counts stay. A store customer id\n"
                    "deletes it for every platform user linked to that customer. The shop's\n"
                    "records (the customer, their orders) are not touched.")
    parser.add_argument("--user", required=True,
                        help="a platform user (telegram:1001) or a store customer id (C0009)")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    counts = _rights(settings).delete_person(args.user)
    print(json.dumps({"deleted": counts}))
    return 0


def privacy_purge_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    argparse.ArgumentParser(
        prog="concierge privacy purge", formatter_class=CommandHelp,
        description="Apply the retention settings once (every process serving customers\n"
                    "also does this every CONCIERGE_RETENTION_CHECK_S): conversations idle\n"
                    "CONCIERGE_RETENTION_TRANSCRIPT_DAYS, tickets closed\n"
                    "CONCIERGE_RETENTION_TICKET_DAYS ago, expired link tokens and codes.",
    ).parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    print(json.dumps({"purged": _rights(settings).purge()}))
    return 0


# -- bench ---------------------------------------------------------------------------------------


def bench_identity_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """What identity costs a turn, and what an order-number guesser gets per hour."""
    import random
    import tempfile
    import time
    import uuid

    from bots.wiring import build_conversation, configure_logging
    from core.identity.store import Link
    from core.infra.percentiles import median, percentile
    from core.turn.conversation import Conversation
    from core.turn.messages import CollectingOutbox, Incoming

    parser = argparse.ArgumentParser(
        prog="concierge bench identity", formatter_class=CommandHelp,
        description="The cost of knowing who is writing: the linked-identity lookup every\n"
                    "turn makes, and order turns of a linked chat user against the terminal's\n"
                    "own customer (no lookup), alternating in one run; then an attacker\n"
                    "sending order numbers and e-mail guesses every few seconds for a\n"
                    "simulated hour: how many were checked at all.")
    parser.add_argument("--turns", type=int, default=200, help="order turns of each kind")
    parser.add_argument("--user", default="C0009", help="a store customer with orders")
    parser.add_argument("--guesses", type=int, default=1000, help="attacker messages in the hour")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = (settings or Settings()).model_copy(
            update={"sqlite_path": Path(tmp) / "bench.sqlite3", "state_backend": "sqlite",
                    "rate_limit_burst": 0})  # users at full speed: only the identity limit
        configure_logging(settings, default_level="ERROR")
        conversation = build_conversation(settings, keep_records=False)
        accounts = conversation.services.accounts
        assert accounts is not None
        orders = conversation.services.orders.for_customer(args.user)
        if not orders:
            print(f"concierge bench identity: customer {args.user} has no orders",
                  file=sys.stderr)
            return 2
        linked_user = f"bench:{uuid.uuid4().hex[:8]}"
        attacker = f"bench:{uuid.uuid4().hex[:8]}"
        accounts.store.save_link(Link(user_id=linked_user, customer_id=args.user,
                                      method="link", linked_at=datetime.now(UTC)))
        try:
            lookups = []
            for _ in range(1000):
                started = time.perf_counter()
                accounts.customer_of(linked_user)
                lookups.append((time.perf_counter() - started) * 1000)
            ask = f"where is order {orders[0].id}?"
            timed: dict[str, list[float]] = {"linked": [], "terminal": []}
            for turn in range(2 * args.turns + 20):  # the first 20 warm the models up
                kind = "linked" if turn % 2 else "terminal"
                incoming = Incoming(
                    f"bench:{kind}:{turn // 10}", linked_user if kind == "linked" else args.user,
                    text=ask, customer_id=None if kind == "linked" else args.user)
                conversation.handle(incoming, CollectingOutbox())
                assert conversation.last_turn is not None
                if turn >= 20:
                    timed[kind].append(conversation.last_turn.ms)
            # The attacker: one message every 3600/guesses simulated seconds for an hour.
            clock = {"now": time.time()}
            attacked = Conversation(conversation.services, conversation.policy,
                                    clock=lambda: clock["now"])
            rng, checked = random.Random(7), 0
            for number in range(args.guesses):
                guess = f"{rng.randrange(10000, 99999)}"
                text = (f"where is order {guess}?" if number % 2 else
                        f"order {guess} someone{number}@example.com")
                outbox = CollectingOutbox()
                attacked.handle(Incoming(f"bench:attack:{number // 20}", attacker, text=text),
                                outbox)
                checked += not any("too many tries" in r.text for r in outbox.replies)
                clock["now"] += 3600 / args.guesses
        finally:
            accounts.unlink(linked_user)
            accounts.store.forget([linked_user, attacker], ())
    result = {
        "lookup_p50_ms": round(median(lookups), 3),
        "lookup_p99_ms": round(percentile(lookups, 99), 3),
        "order_turn_linked_p50_ms": round(median(timed["linked"]), 2),
        "order_turn_terminal_p50_ms": round(median(timed["terminal"]), 2),
        "guesses_sent_per_hour": args.guesses,
        "guesses_checked_per_hour": checked,
        "store": "postgresql" if "postgresql" in settings.store_url.get_secret_value()
        else "sqlite",
    }
    print(f"identity lookup p50 {result['lookup_p50_ms']} ms (p99 {result['lookup_p99_ms']}); "
          f"order turn p50: linked chat user {result['order_turn_linked_p50_ms']} ms, "
          f"terminal customer {result['order_turn_terminal_p50_ms']} ms; an attacker sending "
          f"{args.guesses} guesses in an hour had {checked} checked")
    print(json.dumps(result))
    return 0
