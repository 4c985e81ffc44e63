"""Agent console: `concierge agent` (or `python -m bots.agent_console`).

The support side of the embedded default, in a terminal: see open tickets, claim one, reply
to the customer, resolve it or hand it back to the assistant. It works on the same store as
the customer's chat (another process), so the whole hand-over runs without any chat platform.
Scriptable like the terminal chat: one command per input line. News (open tickets at start, new
tickets, customer messages, reminders) is printed as it arrives; several consoles can watch at once.

Commands (ID may be left out after `show`/`claim`: the console remembers the current ticket):
  list                      open and claimed tickets
  show ID                   summary and transcript
  claim ID                  take the ticket; the customer is told a person is there
  reply [ID] TEXT           send TEXT to the customer (claims the ticket if nobody has)
  note [ID] TEXT            internal note on the ticket; the customer never sees it
  resolve [ID]              close it; the customer is asked for a rating
  handback [ID]             give the customer back to the assistant; also asks for a rating
  wait [SECONDS]            pause the script until news arrives (default 10 s)
  help, quit
"""

from __future__ import annotations

import argparse
import getpass
import json
import multiprocessing
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.store import customer_topic
from core.handover.escalation import (
    Refused,
    SupportDesk,
    last_turns,
    single_line,
    summarize,
    trend,
)
from core.handover.tickets.store import ACTIVE, Ticket
from core.infra.commands import CommandHelp
from core.infra.errors import StoreUnavailable
from core.infra.percentiles import median, percentile
from core.infra.settings import Settings
from core.state.store import ConversationState, EscalationState
from core.turn.messages import Reply

PROMPT = "agent> "
WATCH_S = 0.3  # how often the console looks for news
ROLE_NAMES = {"customer": "customer", "assistant": "assistant", "agent": "agent", "note": "note"}


@dataclass
class Console:
    desk: SupportDesk
    agent: str
    name: str | None
    out: TextIO
    current: str | None = None
    _seen: dict[str, int] = field(default_factory=dict)  # transcript length printed per ticket
    _news: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: bool = False  # tickets seen on the first look are not new

    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    # -- commands -----------------------------------------------------------------------------

    def run(self, line: str) -> bool:
        """Carry out one command line; False when the console should stop."""
        words = line.strip().split(maxsplit=1)
        if not words:
            return True
        command, rest = words[0].lower(), words[1] if len(words) > 1 else ""
        try:
            match command:
                case "quit" | "exit":
                    return False
                case "help" | "?":
                    self.say(__doc__.split("Commands", 1)[1].split("\n", 1)[1].rstrip())
                case "list" | "ls" | "tickets":
                    self._list()
                case "show":
                    self._show(self._ticket_id(rest))
                case "claim":
                    ticket = self.desk.claim(self._ticket_id(rest), self.agent, self.name)
                    self.current = ticket.id
                    self.say(f"{ticket.id}: claimed by you.")
                case "reply" | "r":
                    ticket_id, text = self._ticket_and_text(rest)
                    self.desk.agent_reply(ticket_id, self.agent, text, None, self.name)
                    self.current = ticket_id
                    self._mark_seen(ticket_id)
                    self.say(f"{ticket_id}: sent to the customer.")
                case "note":
                    ticket_id, text = self._ticket_and_text(rest)
                    self.desk.note(ticket_id, self.agent, text)
                    self._mark_seen(ticket_id)
                    self.say(f"{ticket_id}: note added.")
                case "resolve":
                    ticket = self.desk.resolve(self._ticket_id(rest), self.agent)
                    self.say(f"{ticket.id}: resolved; the customer is asked for a rating.")
                case "handback" | "hand-back":
                    ticket = self.desk.hand_back(self._ticket_id(rest), self.agent)
                    self.say(f"{ticket.id}: handed back to the assistant; rating asked.")
                case "wait":
                    seconds = float(rest) if rest.replace(".", "", 1).isdigit() else 10.0
                    self._news.clear()
                    if not self._news.wait(seconds):
                        self.say(f"(no news within {seconds:g} s)")
                case _:
                    self.say(f"Unknown command {command!r}. Type 'help' for the commands.")
        except Refused as refusal:
            self.say(f"Refused: {refusal}")
        except StoreUnavailable as exc:
            self.say(f"The ticket store is unavailable: {exc}")
        return True

    def _list(self) -> None:
        tickets = self.desk.tickets.list(ACTIVE)
        if not tickets:
            self.say("No open tickets.")
            return
        now = time.time()
        for ticket in tickets:
            owner = f"claimed by {ticket.agent}" if ticket.agent else "unclaimed"
            age = max(0, round((now - ticket.created_at) / 60))
            self.say(
                f"{ticket.id}  {ticket.status:<7}  {owner:<20}  {age:>3} min  "
                f"{ticket.who} on {ticket.platform}: {ticket.reason}"
            )

    def _show(self, ticket_id: str) -> None:
        ticket = self._get(ticket_id)
        self.current = ticket.id
        owner = f", claimed by {ticket.agent}" if ticket.agent else ""
        rating = f", rated {ticket.rating}/5" if ticket.rating else ""
        self.say(f"{ticket.id} ({ticket.status}{owner}{rating})")
        self.say(summarize(ticket))
        for entry in ticket.transcript:
            who = entry.author if entry.role in ("agent", "note") and entry.author else ""
            # One line per entry: a customer's line break must not print a line of its own
            # that reads like an agent's or a field the console wrote.
            text = single_line(entry.text)
            self.say(f"  {ROLE_NAMES[entry.role]}{' ' + who if who else ''}: {text}")
        self._seen[ticket.id] = len(ticket.transcript)

    def _ticket_id(self, rest: str) -> str:
        ticket_id = rest.strip().split(maxsplit=1)[0] if rest.strip() else self.current
        if ticket_id is None:
            raise Refused("Which ticket? Give its id (see 'list').")
        return ticket_id

    def _ticket_and_text(self, rest: str) -> tuple[str, str]:
        first, _, remainder = rest.strip().partition(" ")
        if first.startswith("T-") and self.desk.tickets.get(first) is not None:
            return first, remainder
        return self._ticket_id(""), rest

    def _get(self, ticket_id: str) -> Ticket:
        ticket = self.desk.tickets.get(ticket_id)
        if ticket is None:
            raise Refused(f"There is no ticket {ticket_id}.")
        return ticket

    def _mark_seen(self, ticket_id: str) -> None:
        ticket = self.desk.tickets.get(ticket_id)
        if ticket is not None:
            self._seen[ticket_id] = len(ticket.transcript)

    # -- news -----------------------------------------------------------------------------------

    def watch_once(self) -> None:
        """Print what changed in active tickets since the last look; run the SLA sweep."""
        self._report_changes()
        self._started = True

    def _report_changes(self) -> None:
        for reminded in self.desk.sweep():
            self.say(f"[{reminded.id}] reminder: nobody has claimed this ticket yet.")
            self._news.set()
        for ticket in self.desk.tickets.list(ACTIVE):
            seen = self._seen.get(ticket.id)
            self._seen[ticket.id] = len(ticket.transcript)
            if seen is None:
                what = "new ticket" if self._started else f"open ticket ({ticket.status})"
                self.say(
                    f"[{ticket.id}] {what}: {ticket.who} on {ticket.platform}, "
                    f"{ticket.reason}; sentiment {trend(ticket.sentiment_trend)}"
                )
                for line in last_turns(ticket):
                    self.say(f"    {line}")
                self._news.set()
                continue
            for entry in ticket.transcript[seen:]:
                if entry.role == "customer" or (
                    entry.role == "agent" and entry.author != self.agent
                ):
                    author = f" {entry.author}" if entry.role == "agent" and entry.author else ""
                    self.say(f"[{ticket.id}] {entry.role}{author}: {single_line(entry.text)}")
                    self._news.set()

    def watch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.watch_once()
            except StoreUnavailable as exc:
                self.say(f"(the ticket store is unavailable: {exc})")
                stop.wait(2.0)
            stop.wait(WATCH_S)


def _typed_lines() -> Iterable[str]:
    while True:
        try:
            yield input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge agent",
        description="Agent console for the embedded default: answer escalated conversations.",
        formatter_class=CommandHelp,
    )
    parser.add_argument("--agent", default=None, help="your agent id (default: your login name)")
    parser.add_argument("--name", default=None, help="the name customers see (default: none)")
    args = parser.parse_args(argv)
    from bots.wiring import build_support_desk, configure_logging

    settings = Settings()
    configure_logging(settings, default_level="WARNING")
    desk = build_support_desk(settings)
    console = Console(desk, args.agent or getpass.getuser(), args.name, sys.stdout)
    interactive = sys.stdin.isatty()
    if interactive:
        console.say(f"Concierge agent console, signed in as {console.agent}. Type 'help'.")
    stop = threading.Event()
    watcher = threading.Thread(target=console.watch, args=(stop,), daemon=True)
    watcher.start()
    try:
        for line in _typed_lines() if interactive else sys.stdin:
            if not console.run(line):
                break
    finally:
        stop.set()
        watcher.join(2.0)
    return 0



def receive_deliveries(settings: Settings, topic: str, results: Any, ready: Any) -> None:
    """The customer's side of the benchmark, in its own process: a delivery loop."""
    from core.handover.deliveries.factory import open_delivery_queue

    def send_reply(conversation_id: str, reply: Reply) -> None:
        results.put((reply.text, time.time()))

    loop = Deliveries.to_customers(
        open_delivery_queue(settings), topic, send_reply, wait_s=settings.delivery_wait_s
    )
    ready.set()
    loop.run()


def bench_handover(argv: Sequence[str] | None = None) -> int:
    """Delay from an agent's reply to its delivery in the customer's process, per backend."""
    parser = argparse.ArgumentParser(
        prog="concierge bench handover", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=100, help="agent replies timed")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "redis", "both"),
        default="both",
        help="where tickets and deliveries live",
    )
    args = parser.parse_args(argv)
    from bots.wiring import build_support_desk, configure_logging

    base = Settings()
    configure_logging(base, default_level="WARNING")
    backends = ("sqlite", "redis") if args.backend == "both" else (args.backend,)
    results: dict[str, dict[str, float | int | str]] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            settings = base.model_copy(
                update={
                    "state_backend": backend,
                    "sqlite_path": Path(tmp) / "bench.sqlite3",
                    "redis_prefix": f"bench-handover-{uuid.uuid4().hex[:8]}",
                }
            )
            try:
                delays = _measure(settings, build_support_desk(settings), args.replies)
            finally:
                if backend == "redis":
                    forget_redis_keys(settings)
        results[backend] = {
            "replies": len(delays),
            "median_ms": round(median(delays), 1),
            "p99_ms": round(percentile(delays, 99), 1),
            "max_ms": round(max(delays), 1),
        }
        print(
            f"agent reply -> customer delivery ({backend}, separate processes): "
            f"{len(delays)} replies, median {results[backend]['median_ms']} ms, "
            f"p99 {results[backend]['p99_ms']} ms, max {results[backend]['max_ms']} ms"
        )
    print(json.dumps({"handover_delay": results}))
    return 0


def _measure(settings: Settings, desk: SupportDesk, count: int) -> list[float]:
    state = ConversationState(conversation_id="bench:1", user_id="C0001", platform="bench")
    ticket_id = desk.open(state, "benchmark")
    desk.states.save(
        state.model_copy(update={"escalation": EscalationState(status="open", ticket_id=ticket_id)})
    )
    desk.claim(ticket_id, "U_BENCH", "Bench")
    return timed_deliveries(
        settings,
        customer_topic("bench", "bench:1"),
        lambda n: desk.agent_reply(ticket_id, "U_BENCH", f"reply {n}", f"bench-{n}"),
        count,
    )


def timed_deliveries(
    settings: Settings, topic: str, reply: Callable[[int], object], count: int
) -> list[float]:
    """Milliseconds from each `reply(n)` (an agent's reply ending in "reply {n}") to its arrival
    in the customer's delivery loop, run in a fresh interpreter as a bot process is. The first
    message there, the notice that an agent claimed the ticket, is not timed."""
    context = multiprocessing.get_context("spawn")
    received, ready = context.Queue(), context.Event()
    receiver = context.Process(target=receive_deliveries, args=(settings, topic, received, ready))
    receiver.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the receiving process did not start")
        received.get(timeout=60)  # the "picked up" notice from the claim
        delays: list[float] = []
        for n in range(count):
            time.sleep(0.02 + random.random() * 0.05)  # replies arrive at random moments
            sent = time.time()
            reply(n)
            text, at = received.get(timeout=60)
            assert text.endswith(f"reply {n}"), text
            delays.append((at - sent) * 1000)
        return delays
    finally:
        receiver.terminate()
        receiver.join(10)


def forget_redis_keys(settings: Settings) -> None:
    """Delete the benchmark's keys (its own prefix) from Redis."""
    from core.infra.redis_client import RedisConnection

    connection = RedisConnection(settings.redis_url, settings.redis_prefix)
    with connection.guard():
        for key in connection.client.scan_iter(f"{settings.redis_prefix}:*"):
            connection.client.delete(key)


if __name__ == "__main__":
    raise SystemExit(main())
