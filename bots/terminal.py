"""Terminal chat: `concierge chat` (or `python -m bots.terminal`).

Interactive with a prompt on a TTY; scriptable otherwise: one customer message per input line,
replies printed to stdout. A line that is just a number presses that button of the last reply.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bots.shutdown import Shutdown, TurnAbandoned
from core.handover.deliveries.store import customer_topic
from core.identity.store import Link
from core.infra import metrics
from core.infra.commands import CommandHelp
from core.infra.health import serve
from core.infra.percentiles import median, percentile
from core.infra.settings import Settings
from core.state.store import ConversationState
from core.turn import replies
from core.turn.conversation import Conversation
from core.turn.messages import Button, Incoming, Reply
from core.turn.understanding import Understander, Understanding

PROMPT = "you> "
BUTTONS_PER_LINE = 3


class TerminalOutbox:
    """Prints replies and remembers the buttons of the last one for numbered presses."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buttons: tuple[Button, ...] = ()
        self._lock = threading.Lock()  # agent replies arrive from the delivery thread

    def send(self, reply: Reply) -> None:
        with self._lock:
            # Buttons first: a reader may answer as soon as the text is out.
            self.buttons = reply.buttons
            self.out.write(reply_text(reply) + "\n")
            self.out.flush()


def reply_text(reply: Reply) -> str:
    """A reply as plain text: its text, then its buttons as a numbered list."""
    lines = [f"concierge> {reply.text}"]
    labels = [f"[{n}] {button.label}" for n, button in enumerate(reply.buttons, start=1)]
    for start in range(0, len(labels), BUTTONS_PER_LINE):
        lines.append("    " + "   ".join(labels[start : start + BUTTONS_PER_LINE]))
    return "\n".join(lines)


def to_incoming(
    line: str,
    outbox: TerminalOutbox,
    conversation_id: str,
    user_id: str,
    number: int,
    customer_id: str | None = None,
) -> Incoming | str:
    """The event a typed line stands for, or a message for the user when it stands for none.
    `customer_id`: the store customer the person at this terminal is (`--user`)."""
    stripped = line.strip()
    if stripped.isdigit() and len(stripped) <= 3:
        index = int(stripped)
        if not outbox.buttons:
            return replies.NO_BUTTONS.format(number=index)
        if not 1 <= index <= len(outbox.buttons):
            return replies.NO_SUCH_BUTTON.format(number=index, count=len(outbox.buttons))
        payload = outbox.buttons[index - 1].payload
        return Incoming(conversation_id, user_id, button=payload, message_id=f"t{number}",
                        customer_id=customer_id)
    return Incoming(conversation_id, user_id, text=line, message_id=f"t{number}",
                    customer_id=customer_id)


def chat(
    conversation: Conversation,
    lines: Iterable[str],
    out: TextIO,
    user_id: str,
    conversation_id: str | None = None,
    outbox: TerminalOutbox | None = None,
    shutdown: Shutdown | None = None,
    customer_id: str | None = None,
) -> None:
    """One turn per line. With `shutdown`, SIGTERM ends the chat after the turn in flight."""
    conversation_id = conversation_id or new_conversation_id(user_id)
    outbox = outbox or TerminalOutbox(out)
    taken = shutdown.take(lines) if shutdown is not None else lines
    for number, line in enumerate(taken):
        event = to_incoming(
            line.rstrip("\n"), outbox, conversation_id, user_id, number, customer_id
        )
        if isinstance(event, str):
            out.write(f"concierge> {event}\n")
            continue
        with shutdown.turn() if shutdown is not None else nullcontext():
            conversation.handle(event, outbox)


def new_conversation_id(user_id: str) -> str:
    return f"terminal:{user_id}:{uuid.uuid4().hex[:8]}"


def _typed_lines(out: TextIO) -> Iterable[str]:
    while True:
        try:
            line = input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return
        if line.strip() in ("/quit", "/exit"):
            return
        yield line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge chat", description=__doc__,
                                     formatter_class=CommandHelp)
    parser.add_argument(
        "--user",
        default=None,
        help="chat as this customer of the store, who sees their own orders and gets "
             "suggestions from their history (in the demo store C0001 to C0220 have order "
             "histories); the terminal is the shop's own, so no proof is asked; default: a "
             "guest, who can link an account as on Telegram (`link <code>`, an e-mail code)",
    )
    args = parser.parse_args(argv)
    from bots.wiring import build_conversation, configure_logging

    settings = Settings()
    configure_logging(settings, default_level="WARNING")
    conversation = build_conversation(settings)
    customer = None
    if args.user:
        accounts = conversation.services.accounts
        if accounts is not None and accounts.store.customer(args.user) is None:
            print(f"concierge chat: no customer {args.user} in the store; chatting as a guest "
                  "with that name", file=sys.stderr)
        else:
            customer = args.user
    user = args.user or f"guest-{uuid.uuid4().hex[:6]}"
    return serve_chat(settings, conversation, user, customer)


def serve_chat(
    settings: Settings, conversation: Conversation, user_id: str, customer_id: str | None = None
) -> int:
    """Chat on stdin/stdout until the input ends or SIGTERM; the turn in flight finishes."""
    from bots.wiring import start_customer_deliveries

    conversation_id = new_conversation_id(user_id)
    outbox = TerminalOutbox(sys.stdout)
    # Replies from a support agent (another process) arrive through the store.
    deliveries = start_customer_deliveries(
        settings,
        conversation,
        customer_topic("terminal", conversation_id),
        lambda _conversation, reply: outbox.send(reply),
    )
    interactive = sys.stdin.isatty()
    if interactive:
        sys.stdout.write(f"Concierge demo store. Chatting as {user_id}. Ctrl-D to quit.\n")
    lines = _typed_lines(sys.stdout) if interactive else sys.stdin
    health = serve(settings, role="chat")
    try:
        with Shutdown(settings.shutdown_grace_s, health.drain if health else None) as shutdown:
            chat(conversation, lines, sys.stdout, user_id, conversation_id, outbox, shutdown,
                 customer_id)
    except TurnAbandoned as exc:
        sys.stderr.write(f"concierge: stopped: {exc}; that message was not answered\n")
        return 1
    finally:
        if deliveries is not None:
            deliveries.stop()
        if health is not None:
            health.stop()
    return 0


SCRIPT = (
    "hi",
    "I need a waterproof jacket",
    "something cheaper",
    "1",
    "what is your return policy?",
    "where is my order {order_id}?",
    "do you have wireless headphones under $150?",
    "the second one in black?",
    "how long does shipping take?",
    "thanks!",
)


def bench_chat(argv: Sequence[str] | None = None) -> int:
    """Per-turn latency of the terminal chat over scripted turns: median and p99.

    One full pass of the script runs first, untimed, so the models' lazy loading (the first
    understanding, the first recommendation) is not counted as a turn; the time until the
    chat is ready, that warm-up pass included, is reported as `ready_s`.
    """
    parser = argparse.ArgumentParser(
        prog="concierge bench chat", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200, help="timed turns")
    parser.add_argument(
        "--user",
        default="C0001",
        help="the customer who chats (their newest order is asked about); a customer of the "
             "store CONCIERGE_STORE_URL names",
    )
    parser.add_argument(
        "--linked",
        action="store_true",
        help="chat as a platform user linked to that customer in the store (the link is "
             "looked up every turn, as on Telegram and Slack) instead of the terminal's own "
             "customer; the link is removed afterwards",
    )
    parser.add_argument(
        "--concurrency",
        default=None,
        help="comma list of thread counts K (e.g. 1,8,32,64): K customers chat at once, each "
             "in a conversation of their own, for --seconds per K; turns/s and p50/p99 latency "
             "with the local model's batching on and off, side by side (--turns is then unused)",
    )
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="with --concurrency: how long each K runs, per batching mode")
    parser.add_argument("--state", default=None,
                        help="with --concurrency: comma list of state backends (sqlite,redis); "
                             "default: the configured one")
    parser.add_argument("--batching", default="on,off",
                        help="with --concurrency: which of on,off to run (on: the configured "
                             "CONCIERGE_NLU_BATCH_MAX, off: one message per forward)")
    parser.add_argument("--compare", action="store_true",
                        help="the encoder variants side by side in one run, turns interleaved: "
                             "float and int8 (CONCIERGE_ENCODER_PRECISION), each with the "
                             "message's vector shared with the recommender or encoded twice; "
                             "every request text is new to the recommender (its cache is "
                             "emptied before each turn), as in a shop with varied requests")
    parser.add_argument("--bandit", action="store_true",
                        help="with the learning re-ranker on (CONCIERGE_BANDIT): its cost per "
                             "recommendation, re-rank and slate log apart, in microseconds")
    args = parser.parse_args(argv)
    if set(args.batching.split(",")) - {"on", "off"}:
        parser.error(f"--batching takes on, off or on,off, not {args.batching!r}")
    if args.compare:
        return bench_encoders(args.turns, args.user)
    if args.concurrency:
        return bench_concurrency(
            [int(k) for k in args.concurrency.split(",")],
            args.seconds,
            args.state.split(",") if args.state else [Settings().state_backend],
            args.batching.split(","),
        )
    from bots.wiring import build_conversation, configure_logging

    with tempfile.TemporaryDirectory() as tmp:
        # One scripted customer at full speed: the flood limit would refuse most of the turns.
        settings = Settings(sqlite_path=Path(tmp) / "bench.sqlite3", state_backend="sqlite",
                            rate_limit_burst=0)
        if args.bandit:
            settings = settings.model_copy(update={"bandit": True})
        configure_logging(settings, default_level="WARNING")
        started = time.perf_counter()
        conversation = build_conversation(settings, keep_records=False)  # the shop's data stays
        build_s = time.perf_counter() - started
        orders = conversation.services.orders.for_customer(args.user)
        if not orders:
            print(f"concierge bench chat: customer {args.user} has no orders in this store: "
                  "name one who has with --user", file=sys.stderr)
            return 2
        order_id = orders[0].id
        script = [line.format(order_id=order_id) for line in SCRIPT]
        outbox = TerminalOutbox(open("/dev/null", "w"))  # noqa: SIM115
        accounts = conversation.services.accounts
        user, customer = args.user, args.user
        if args.linked and accounts is not None:
            user, customer = f"bench:{uuid.uuid4().hex[:8]}", None
            accounts.store.save_link(Link(user_id=user, customer_id=args.user, method="link",
                                          linked_at=datetime.now(UTC)))
        try:
            warmup_started = time.perf_counter()
            _run_script(conversation, outbox, script, len(script), user, "bench-warmup", customer)
            warmup_s = time.perf_counter() - warmup_started
            latencies = _run_script(conversation, outbox, script, args.turns, user, "bench",
                                    customer)
        finally:
            if user != args.user and accounts is not None:
                accounts.unlink(user)
    result = {
        "turns": len(latencies),
        "median_ms": round(median(latencies), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "startup_s": round(build_s, 2),  # the services built, models not yet used
        "warmup_s": round(warmup_s, 2),  # one untimed pass of the script: lazy loads happen here
        "ready_s": round(build_s + warmup_s, 2),  # process start to a chat at full speed
        "understander": settings.understander,
        "recommender": settings.recommender,
        "identity": "linked" if args.linked else "terminal",
        "products": len(conversation.services.catalog.all()),
    } | _bandit_costs(conversation)
    print(
        f"terminal chat: {result['turns']} turns, median {result['median_ms']} ms, "
        f"p99 {result['p99_ms']} ms (nearest rank), startup {result['startup_s']} s + warm-up "
        f"{result['warmup_s']} s ({len(script)} turns, not timed) = ready in {result['ready_s']} s"
    )
    print(json.dumps(result))
    return 0


def _bandit_costs(conversation: Conversation) -> dict[str, object]:
    """The learning re-ranker's cost per recommendation, when it served (in-process only)."""
    service = getattr(conversation.services.recommender, "inner", None)
    ranker = getattr(service, "bandit", None)
    if ranker is None or not ranker.costs:
        return {}
    rerank = [1e6 * c[0] for c in ranker.costs]
    logged = [1e6 * c[1] for c in ranker.costs]
    costs: dict[str, object] = {"bandit_slates": len(rerank),
             "bandit_rerank_us_median": round(median(rerank)),
             "bandit_rerank_us_p99": round(percentile(rerank, 99)),
             "bandit_log_us_median": round(median(logged))}
    print(f"bandit: {costs['bandit_slates']} slates, re-rank median "
          f"{costs['bandit_rerank_us_median']} µs (p99 {costs['bandit_rerank_us_p99']}), slate "
          f"log median {costs['bandit_log_us_median']} µs")
    return costs


# name: (encoder precision, whether the recommender gets the message's vector)
ENCODER_VARIANTS = {"float": ("float", False), "float+shared": ("float", True),
                    "int8": ("int8", False), "int8+shared": ("int8", True)}


class _EncodeTwice:
    """An understander whose answers carry no sentence vector: the recommender encodes the
    request itself, as it did before vectors were shared."""

    def __init__(self, inner: Understander) -> None:
        self.inner = inner

    def understand(self, text: str, state: ConversationState) -> Understanding:
        return self.inner.understand(text, state).model_copy(update={"sentence_vector": None})


def bench_encoders(turns: int, user: str) -> int:
    """`bench chat --compare`: per-turn latency of each `ENCODER_VARIANTS`, in one process
    (the in-process recommender), one script pass of each in turn so a busy spell of a
    shared machine falls on all alike; request texts always cold."""
    from bots.wiring import build_conversation, configure_logging

    with tempfile.TemporaryDirectory() as tmp:
        chats: dict[str, Conversation] = {}
        for name, (precision, shared) in ENCODER_VARIANTS.items():
            settings = Settings(sqlite_path=Path(tmp) / f"{name}.sqlite3", state_backend="sqlite",
                                rate_limit_burst=0, recommender="inprocess",
                                encoder_precision=precision)  # type: ignore[arg-type]
            configure_logging(settings, default_level="WARNING")
            conversation = build_conversation(settings, keep_records=False)
            if not shared:
                conversation.services = replace(
                    conversation.services,
                    understander=_EncodeTwice(conversation.services.understander))
            chats[name] = conversation
        first = next(iter(chats.values()))
        orders = first.services.orders.for_customer(user)
        if not orders:
            print(f"concierge bench chat: customer {user} has no orders in this store: "
                  "name one who has with --user", file=sys.stderr)
            return 2
        script = [line.format(order_id=orders[0].id) for line in SCRIPT]
        outbox = TerminalOutbox(open("/dev/null", "w"))  # noqa: SIM115
        scorers: dict[str, Any] = {}  # the in-process ScoringService of each variant
        for name, conversation in chats.items():
            scorers[name] = getattr(conversation.services.recommender, "inner", None)
            if not hasattr(scorers[name], "forget_requests"):
                raise SystemExit("concierge bench chat --compare: needs the in-process "
                                 "recommender")
            _run_script(conversation, outbox, script, len(script), user, f"warm-{name}", user)
        latencies: dict[str, list[float]] = {name: [] for name in chats}
        encodes = {name: 0 for name in chats}
        names = list(chats)
        for round_ in range(max(1, turns // len(script))):
            for name in names if round_ % 2 == 0 else names[::-1]:
                scorer = scorers[name]
                encoded_before = scorer.request_encodes
                for number, line in enumerate(script):
                    scorer.forget_requests()
                    event = to_incoming(line, outbox, f"bench-{name}:{round_}", user, number,
                                        user)
                    if isinstance(event, str):
                        continue
                    chats[name].handle(event, outbox)
                    done = chats[name].last_turn
                    assert done is not None
                    latencies[name].append(done.ms)
                encodes[name] += scorer.request_encodes - encoded_before
    figures = {
        name: {"turns": len(ms), "median_ms": round(median(ms), 2),
               "p99_ms": round(percentile(ms, 99), 2), "request_encodes": encodes[name]}
        for name, ms in latencies.items()
    }
    for name, f in figures.items():
        print(f"{name:<13} {f['turns']} turns: median {f['median_ms']:>6} ms, p99 "
              f"{f['p99_ms']:>6} ms; request texts the recommender encoded: "
              f"{f['request_encodes']}")
    before, after = figures["float"]["median_ms"], figures["int8+shared"]["median_ms"]
    print(f"before (float, encoded twice) -> after (int8, shared): median {before} -> {after} "
          f"ms ({before / after:.2f} times as fast)")
    print(json.dumps({"bench": "chat-encoders", "variants": figures}))
    return 0


def _run_script(
    conversation: Conversation,
    outbox: TerminalOutbox,
    script: Sequence[str],
    turns: int,
    user_id: str,
    prefix: str,
    customer_id: str | None = None,
) -> list[float]:
    """`turns` turns of the script (a new conversation each time it starts over); each turn's ms."""
    latencies: list[float] = []
    conversation_id = f"{prefix}:0"
    for turn in range(turns):
        if turn % len(script) == 0:
            conversation_id = f"{prefix}:{turn}"
        event = to_incoming(
            script[turn % len(script)], outbox, conversation_id, user_id, turn, customer_id
        )
        if isinstance(event, str):
            continue
        conversation.handle(event, outbox)
        assert conversation.last_turn is not None
        latencies.append(conversation.last_turn.ms)
    return latencies


@dataclass(frozen=True)
class LoadRun:
    """K threads driving one conversation service for a while: what they measured."""

    state: str
    batching: str
    threads: int
    turns: int
    seconds: float
    latencies_ms: list[float]
    mean_batch: float | None  # messages per forward of the local model in this run

    def figures(self) -> dict[str, object]:
        return {
            "state": self.state, "batching": self.batching, "threads": self.threads,
            "turns": self.turns, "turns_per_s": round(self.turns / self.seconds, 1),
            "p50_ms": round(median(self.latencies_ms), 1),
            "p99_ms": round(percentile(self.latencies_ms, 99), 1),
            "mean_batch": round(self.mean_batch, 2) if self.mean_batch is not None else None,
        }


def bench_concurrency(
    thread_counts: Sequence[int], seconds: float, states: Sequence[str], modes: Sequence[str]
) -> int:
    """Turns/s and latency of `Conversation.handle` called by K threads at once (distinct
    conversations and customers, the in-process recommender), per state backend, with the
    local model's batching on and off. The modes alternate at each K so that a noisy
    neighbour on a shared machine weighs on both alike. Closed loop: each thread sends its
    next message when the last is answered, so latency grows with K once the CPUs are full
    (mean latency = K / throughput)."""
    from bots.wiring import build_conversation, configure_logging

    runs: list[LoadRun] = []
    refused_before = metrics.rate_limited_so_far()
    for state in states:
        with tempfile.TemporaryDirectory() as tmp:
            services: dict[str, Conversation] = {}
            for mode in modes:
                configured = Settings()
                settings = Settings(
                    sqlite_path=Path(tmp) / f"bench-{mode}.sqlite3",
                    state_backend=state,  # type: ignore[arg-type]
                    redis_prefix=f"bench-{uuid.uuid4().hex[:8]}",
                    nlu_batch_max=configured.nlu_batch_max if mode == "on" else 1,
                    # Each thread is one customer at full speed: the flood limit would refuse
                    # most of their turns.
                    rate_limit_burst=0,
                )
                configure_logging(settings, default_level="WARNING")
                services[mode] = build_conversation(settings, keep_records=False)
            first = next(iter(services.values()))
            customers = _customers_with_orders(first, max(thread_counts))
            for conversation in services.values():  # lazy loads happen here, untimed
                _drive(conversation, customers[:1], 0.0, f"warmup-{uuid.uuid4().hex[:6]}")
            for k in thread_counts:
                for mode, conversation in services.items():
                    run = _drive(conversation, customers[:k], seconds,
                                 f"bench-{uuid.uuid4().hex[:6]}")
                    runs.append(replace(run, state=state, batching=mode))
                    figures = runs[-1].figures()
                    print(f"{state:<6} K={k:<3} batching {mode:<3}: "
                          f"{figures['turns_per_s']:>6} turns/s  p50 {figures['p50_ms']:>6} ms  "
                          f"p99 {figures['p99_ms']:>7} ms  mean batch {figures['mean_batch']}",
                          flush=True)
            for conversation in services.values():
                close = getattr(conversation.services.understander, "close", None)
                if close is not None:
                    close()
    # Turns the flood limit refused would be counted as (very fast) turns: there must be none.
    refused = metrics.rate_limited_so_far() - refused_before
    print(json.dumps({"bench": "chat-concurrency", "seconds_per_run": seconds,
                      "rate_limited": refused, "runs": [run.figures() for run in runs]}))
    return 0


def _customers_with_orders(conversation: Conversation, count: int) -> list[tuple[str, str]]:
    """(customer, newest order) of up to `count` store customers, repeated when the store has
    fewer; each thread of the benchmark chats as one of them."""
    found: list[tuple[str, str]] = []
    for number in range(1, 1000):
        orders = conversation.services.orders.for_customer(f"C{number:04d}")
        if orders:
            found.append((f"C{number:04d}", orders[0].id))
        if len(found) == count:
            break
    if not found:
        raise SystemExit("concierge bench chat: no customer C0001..C0999 has orders in this "
                         "store: import the demo store (`concierge store import --demo`)")
    return [found[i % len(found)] for i in range(count)]


def _drive(
    conversation: Conversation, customers: Sequence[tuple[str, str]], seconds: float, run: str
) -> LoadRun:
    """One thread per customer, each going through the script (a new conversation each time
    it starts over) until `seconds` have passed (at least one pass when 0); the conversations
    are deleted afterwards."""
    understander = conversation.services.understander
    batcher = getattr(understander, "batcher", None)
    before = batcher.stats() if batcher is not None else None
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in customers]
    used: list[list[str]] = [[] for _ in customers]

    def chat_as(index: int) -> None:
        customer, order_id = customers[index]
        script = [line.format(order_id=order_id) for line in SCRIPT]
        outbox = TerminalOutbox(open(os.devnull, "w"))  # noqa: SIM115
        turn = 0
        while True:
            if turn % len(script) == 0:
                used[index].append(f"{run}:{index}:{turn}")
            event = to_incoming(script[turn % len(script)], outbox, used[index][-1], customer,
                                turn, customer)
            turn += 1
            if not isinstance(event, str):
                started = time.perf_counter()
                conversation.handle(event, outbox)
                latencies[index].append((time.perf_counter() - started) * 1000)
            if time.perf_counter() >= deadline and (seconds > 0 or turn % len(script) == 0):
                break

    started = time.perf_counter()
    threads = [threading.Thread(target=chat_as, args=(i,)) for i in range(len(customers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for ids in used:
        for conversation_id in ids:
            conversation.services.store.delete(conversation_id)
    mean_batch = None
    if batcher is not None and before is not None:
        after = batcher.stats()
        done = after.batches - before.batches
        mean_batch = (after.items - before.items) / done if done else None
    samples = [ms for per_thread in latencies for ms in per_thread]
    return LoadRun("", "", len(customers), len(samples), elapsed, samples, mean_batch)


if __name__ == "__main__":
    raise SystemExit(main())
