"""`concierge bench web`: how fast the desk's pages render with 10,000 tickets in the store, and
how long an agent's reply takes from the click to the customer's process.

Each backend (the SQLite file of the embedded default, Redis as when scaled) gets a store of
its own in a temporary folder or key prefix: the demo store imported, `--tickets` tickets (open,
claimed, resolved and handed back, with transcripts) and `--turns` activity records over the
dashboard's 30 days. Pages are fetched through the application (Starlette's test client, no
network); a reply is posted the same way while the customer's delivery loop runs in another
process, as a bot's does.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.infra.commands import CommandHelp
from core.infra.percentiles import median, percentile
from core.infra.settings import Settings

REASONS = ("customer asked for a person", "negative sentiment persists", "complaint repeated",
           "order change needs a person", "suggestions repeatedly rejected")
INTENTS = ("recommend", "refine", "order_status", "return_refund", "greeting", "complaint",
           "human_agent", "other")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge bench web",
        description="Desk page render times with many tickets, and agent click -> delivery.",
        formatter_class=CommandHelp,
    )
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets in the store")
    parser.add_argument("--turns", type=int, default=100_000,
                        help="activity records over the dashboard's days")
    parser.add_argument("--fetches", type=int, default=30, help="times each page is fetched")
    parser.add_argument("--replies", type=int, default=50, help="agent replies timed")
    parser.add_argument("--backend", choices=("sqlite", "redis", "both"), default="both",
                        help="where tickets and deliveries live")
    args = parser.parse_args(argv)
    from bots.wiring import configure_logging

    base = Settings()
    configure_logging(base, default_level="WARNING")
    backends = ("sqlite", "redis") if args.backend == "both" else (args.backend,)
    results: dict[str, Any] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            settings = base.model_copy(update={
                "state_backend": backend,
                "sqlite_path": Path(tmp) / "state.sqlite3",
                "store_url": SecretStr(f"sqlite:///{Path(tmp) / 'store.sqlite3'}"),
                "redis_prefix": f"bench-web-{uuid.uuid4().hex[:8]}",
            })
            try:
                results[backend] = _bench(settings, args)
            finally:
                if backend == "redis":
                    from bots.agent_console import forget_redis_keys

                    forget_redis_keys(settings)
        _print(backend, results[backend])
    print(json.dumps({"web": results}))
    return 0


def _bench(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from starlette.testclient import TestClient

    from bots.store import DEMO_FILES
    from bots.web.app import build_web_app
    from bots.web.auth import hash_password
    from bots.wiring import build_web_desk, open_store
    from core.shopdb.agents import DeskAgent
    from core.shopdb.importer import import_store

    database = open_store(settings)
    demo = settings.demo_dir
    import_store(database, {k: demo / name for k, name in DEMO_FILES.items()
                            if (demo / name).exists()})
    desk, secret = build_web_desk(settings)
    password = uuid.uuid4().hex
    desk.sign_in.agents.add(DeskAgent(login="bench", name="Bench",
                                      password_hash=hash_password(password)))
    started = time.perf_counter()
    ticket_ids = _seed_tickets(desk, args.tickets)
    _seed_activity(desk, args.turns)
    seeded_s = time.perf_counter() - started
    with TestClient(build_web_app(desk, secret)) as client:
        page = client.get("/login").text
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"login": "bench", "password": password, "csrf": token})
        pages = {
            "inbox": "/tickets",
            "inbox_page_50": "/tickets?view=closed&page=50",
            "ticket": f"/tickets/{ticket_ids[len(ticket_ids) // 2]}",
            "dashboard": "/dashboard",
            "csv": "/dashboard/escalation-rate.csv",
        }
        renders: dict[str, dict[str, float]] = {}
        for name, path in pages.items():
            times = []
            for _ in range(args.fetches):
                begun = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            renders[name] = {"median_ms": round(median(times), 1),
                             "p99_ms": round(percentile(times, 99), 1),
                             "max_ms": round(max(times), 1)}
        delays = _click_to_delivery(settings, desk, client, args.replies)
    return {
        "tickets": args.tickets,
        "activity_records": args.turns,
        "seed_s": round(seeded_s, 1),
        "render": renders,
        "click_to_delivery": {
            "replies": len(delays),
            "median_ms": round(median(delays), 1),
            "p99_ms": round(percentile(delays, 99), 1),
            "max_ms": round(max(delays), 1),
        },
    }


def _seed_tickets(desk: Any, count: int) -> list[str]:
    from core.handover.tickets.store import Ticket, TicketEntry

    rng = random.Random(7)
    now = time.time()
    ids = []
    for n in range(count):
        created = now - rng.uniform(0, 30 * 86400)
        status = rng.choices(("open", "claimed", "resolved", "handed_back"), (1, 1, 6, 2))[0]
        closed = status in ("resolved", "handed_back")
        ticket = Ticket(
            id=f"T-bench-{n:06d}",
            conversation_id=f"bench:{n}",
            customer=f"bench-user-{n}",
            verified_customer=f"C{rng.randint(1, 200):04d}" if rng.random() < 0.4 else None,
            platform=rng.choice(("telegram", "slack", "terminal")),
            reason=rng.choice(REASONS),
            sentiment_trend=("neutral", "negative"),
            intents=("recommend", "complaint"),
            transcript=tuple(
                TicketEntry(role=("customer", "assistant")[i % 2], text=f"message {i} of {n}",
                            at=created - 60 + i)
                for i in range(6)
            ),
            status=status,  # type: ignore[arg-type]
            agent="bench" if status != "open" else None,
            rating=rng.randint(1, 5) if closed and rng.random() < 0.6 else None,
            created_at=created,
            updated_at=created,
            claimed_at=created + 30 if status != "open" else None,
            closed_at=created + 600 if closed else None,
        )
        desk.support.tickets.create(ticket)
        ids.append(ticket.id)
    return ids


def _seed_activity(desk: Any, count: int) -> None:
    from core.activity.record import TurnActivity

    rng = random.Random(11)
    now = time.time()
    batch = []
    for _ in range(count):
        shown = rng.choice((0, 0, 3))
        batch.append(TurnActivity(
            at=now - rng.uniform(0, 30 * 86400), platform="telegram",
            intent=rng.choice(INTENTS), sentiment="neutral", decision="recommend",
            first_today=rng.random() < 0.3, shown=shown,
            pressed=rng.randint(1, 3) if not shown and rng.random() < 0.2 else None,
        ))
        if len(batch) == 5000:
            desk.dashboard.activity.write(batch)
            batch = []
    desk.dashboard.activity.write(batch)


def _click_to_delivery(settings: Settings, desk: Any, client: Any, count: int) -> list[float]:
    from bots.agent_console import timed_deliveries
    from core.handover.deliveries.store import customer_topic
    from core.state.store import ConversationState, EscalationState

    state = ConversationState(conversation_id="bench:click", user_id="bench-click",
                              platform="bench")
    ticket_id = desk.support.open(state, "benchmark")
    desk.support.states.save(state.model_copy(
        update={"escalation": EscalationState(status="open", ticket_id=ticket_id)}))
    page = client.get(f"/tickets/{ticket_id}").text
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    client.post(f"/tickets/{ticket_id}/claim", data={"csrf": token})

    def click_send(n: int) -> None:  # what the browser posts when the agent clicks Send
        client.post(f"/tickets/{ticket_id}/reply",
                    data={"csrf": token, "text": f"reply {n}", "key": f"bench-{n}"},
                    follow_redirects=False)

    return timed_deliveries(settings, customer_topic("bench", "bench:click"), click_send, count)


def _print(backend: str, result: dict[str, Any]) -> None:
    print(f"{backend}: {result['tickets']} tickets, {result['activity_records']} activity "
          f"records (seeded in {result['seed_s']} s)")
    for name, figures in result["render"].items():
        print(f"  {name:<14} median {figures['median_ms']:>6} ms   p99 {figures['p99_ms']:>6} ms"
              f"   max {figures['max_ms']:>6} ms")
    click = result["click_to_delivery"]
    print(f"  agent click -> customer delivery (another process): {click['replies']} replies, "
          f"median {click['median_ms']} ms, p99 {click['p99_ms']} ms")
