"""`concierge bench load`: simulated customers through the real adapters, with faults, checked.

It starts a world of its own (`bots.loadtest.world`): a Redis on a free port with a generated
password (state, locks, tickets, deliveries and the Celery broker), Celery workers, N Telegram
bot processes polling the telegram-test-api emulator (each with a bot token and chats of its
own: two pollers on one token conflict in real Telegram, 409), a Slack process in HTTP mode
against the Slack Web API stand-in, and terminal customers served in this process. Everything
logs (at DEBUG by default) into the run's folder. Customers talk for `--seconds`, faults come
one after another (`bots.loadtest.faults`), an agent answers every ticket through the support
desk, and then what the stand-ins received is checked (`bots.loadtest.checks`). A readable
summary goes to stderr and one JSON line to stdout. Every process is stopped on exit, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bots.loadtest.checks import (
    AgentReply,
    Sent,
    judge_agent_replies,
    judge_messages,
    latency_figures,
    saved_a_turn,
    secrets_in_logs,
    silent_refusals,
)
from bots.loadtest.customers import (
    AGENT_MARK,
    SimulatedCustomer,
    SlackChannel,
    SlackInbox,
    TelegramChannel,
    TelegramInbox,
    TerminalChannel,
    flood,
)
from bots.loadtest.faults import Fault, Window, chosen_faults, run_faults, schedule
from bots.loadtest.peers import SlackWebApi, TelegramEmulator, free_port
from bots.loadtest.world import LlmStandIn, RedisServer, Service, group_cpu_s, python_module
from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.store import customer_topic
from core.handover.tickets.store import ACTIVE
from core.infra import logs
from core.infra.commands import CommandHelp
from core.infra.settings import Settings

log = logging.getLogger(__name__)

AGENT = "ULOADAGENT"
AGENT_REPLIES = 2  # per ticket, then the agent hands the customer back
PLATFORMS = ("telegram", "slack", "terminal")
ESCALATING_SHARE = 0.05
FLOOD_PER_S = 100.0
READY_S = 180.0  # processes load models on a busy 2-core machine
DRAIN_S = 30.0  # after the customers stop: wait this long at most for answers still due
QUIET_S = 3.0  # ... and stop waiting once nothing new arrived for this long
TELEGRAM_BASE_USER = 500_000
WARMUP_BASE_USER = 900_000


@dataclass(frozen=True)
class LoadConfig:
    """One run's knobs: the CLI's options, and the settings every process of the run shares."""

    customers: int = 200
    seconds: float = 60.0
    bots: int = 1
    workers: int = 1
    faults: tuple[str, ...] = ()
    seed: int = 7
    understander: str = "cascade"
    encoder_precision: str = "float"  # the local model's encoder: float or int8
    llm_timeout_s: float = 1.0  # a held LLM request fails after this (then the local model)
    # Seconds a customer waits between messages (uniform): with the answer's own time, this
    # sets the offered load: 200 customers thinking 1-3 s offer about 100 turns/s.
    think_s: tuple[float, float] = (1.0, 3.0)
    # DEBUG, so the secrets check reads every line any library writes; INFO measures the
    # throughput a deployment (which logs at INFO) gets.
    log_level: str = "DEBUG"
    keep: bool = False  # keep the run's folder (logs) afterwards


@dataclass
class World:
    """Everything a run started; `close()` stops it all."""

    config: LoadConfig
    folder: Path
    redis: RedisServer
    llm: LlmStandIn
    slack_api: SlackWebApi
    emulator: TelegramEmulator
    secrets: dict[str, str]
    env: dict[str, str]
    tokens: list[str]
    slack_url: str = ""
    workers: list[Service] = field(default_factory=list)
    telegram: list[Service] = field(default_factory=list)
    slack: Service | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)  # by service, filled by `close()`

    def services(self) -> list[Service]:
        return [*self.telegram, *([self.slack] if self.slack else []), *self.workers]

    def close(self) -> None:
        for service in self.services():
            service.stop(signal.SIGTERM, timeout=10)
        if self.emulator.process is not None:
            pid = self.emulator.process.pid
            self.cpu_s["telegram_emulator"] = round(group_cpu_s(pid, only=pid), 1)
        self.emulator.stop()
        redis = [self.redis.service] if self.redis.service is not None else []
        for service in [*self.services(), *redis]:
            if service.process is not None and service.alive:
                service.cpu_s += group_cpu_s(service.process.pid)
            self.cpu_s[service.name] = round(self.cpu_s.get(service.name, 0) + service.cpu_s, 1)
        # This process: the customers, the terminal turns, the stand-ins, the agent.
        self.cpu_s["harness"] = round(sum(os.times()[:2]), 1)
        self.slack_api.stop()
        self.redis.stop()


def settings_for(
    config: Configured, redis_url: str, llm_url: str, api_key: str, folder: Path
) -> dict[str, str]:
    """The CONCIERGE_* settings every process of the run gets (bot-specific ones added later)."""
    return {
        "CONCIERGE_STATE_BACKEND": "redis",
        "CONCIERGE_REDIS_URL": f"{redis_url}/0",
        "CONCIERGE_REDIS_PREFIX": "load",
        "CONCIERGE_CELERY_BROKER_URL": f"{redis_url}/1",
        "CONCIERGE_CELERY_RESULT_BACKEND": f"{redis_url}/1",
        "CONCIERGE_CELERY_QUEUE": "load.score",
        "CONCIERGE_RECOMMENDER": "celery",
        "CONCIERGE_UNDERSTANDER": config.load.understander,
        "CONCIERGE_ENCODER_PRECISION": config.load.encoder_precision,
        "CONCIERGE_LLM_BASE_URL": llm_url,
        "CONCIERGE_LLM_API_KEY": api_key,
        "CONCIERGE_LLM_TIMEOUT_S": str(config.load.llm_timeout_s),
        "CONCIERGE_LLM_RETRIES": "1",
        "CONCIERGE_LLM_BREAKER_RESET_S": "5",
        "CONCIERGE_LOG_LEVEL": config.load.log_level,
        "CONCIERGE_STORE_URL": config.store_url,
        "CONCIERGE_MODELS_DIR": str(config.models_dir),
        "CONCIERGE_ESCALATION_SLA_S": "3600",
        "CONCIERGE_DELIVERY_WAIT_S": "0.3",
        "CONCIERGE_RETENTION_CHECK_S": "86400",
        "CONCIERGE_SQLITE_PATH": str(folder / "unused.sqlite3"),
        "CONCIERGE_SLACK_MODE": "http",
    }


@dataclass(frozen=True)
class Configured:
    """A LoadConfig with what it was resolved against: the store and the trained models."""

    load: LoadConfig
    store_url: str
    models_dir: Path


def prepare_store(settings: Settings, folder: Path) -> str:
    """The run's store: a copy of the configured SQLite store, the configured PostgreSQL one
    as it is (a run writes no store rows), or the demo store imported afresh."""
    url = settings.store_url.get_secret_value()
    if url.startswith("sqlite:///"):
        source = Path(url.removeprefix("sqlite:///"))
        if source.exists():
            target = folder / "store.sqlite3"
            shutil.copyfile(source, target)
            return f"sqlite:///{target}"
    elif url.startswith("postgresql"):
        return url
    from bots.store import DEMO_FILES
    from core.shopdb.database import ShopDatabase
    from core.shopdb.importer import import_store

    target_url = f"sqlite:///{folder / 'store.sqlite3'}"
    database = ShopDatabase(target_url)
    files = {k: settings.demo_dir / n for k, n in DEMO_FILES.items()
             if (settings.demo_dir / n).exists()}
    import_store(database, files)
    database.close()
    return target_url


def process_env(base: dict[str, str]) -> dict[str, str]:
    """This environment less any CONCIERGE_* (the run's settings replace them), plus `base`."""
    import os

    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env["PYTHONPATH"] = root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env |= {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return env | base


def wait_ready(check: Any, what: str, service: Service | None = None) -> None:
    deadline = time.monotonic() + READY_S
    while not check():
        if service is not None and not service.alive:
            raise RuntimeError(f"{what} exited while starting; see {service.logs}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {READY_S:.0f} s")
        time.sleep(0.3)


def worker_ready(service: Service) -> bool:
    log_file = service.logs / f"{service.name}-{service.starts}.log"
    return log_file.exists() and " ready." in log_file.read_text(errors="replace")


def slack_answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=2)
    except urllib.error.HTTPError as error:
        return error.code == 401  # up, and refusing an unsigned request
    except OSError:
        return False
    return False


def start_world(config: LoadConfig, folder: Path, loop: asyncio.AbstractEventLoop) -> World:
    settings = Settings()
    configured = Configured(config, prepare_store(settings, folder),
                            settings.models_dir.resolve())
    password = secrets.token_hex(16)
    tokens = [f"{7100 + n}:{secrets.token_urlsafe(24)}" for n in range(config.bots)]
    the_secrets = {
        "redis_password": password,
        "slack_signing_secret": secrets.token_hex(16),
        "slack_bot_token": f"xoxb-{secrets.token_hex(12)}",
        "llm_api_key": f"sk-load-{secrets.token_hex(16)}",
        **{f"telegram_token_{n}": token for n, token in enumerate(tokens)},
        # The token's secret half alone is as good as the token.
        **{f"telegram_token_{n}_secret": token.split(":", 1)[1] for n, token in enumerate(tokens)},
    }
    redis_server = RedisServer(free_port(), password, folder).start()
    llm = LlmStandIn(the_secrets["llm_api_key"], hold_s=config.llm_timeout_s * 3)
    asyncio.run_coroutine_threadsafe(llm.start(free_port()), loop).result(10)
    world = World(
        config, folder, redis_server, llm, SlackWebApi().start(),
        TelegramEmulator(tokens[0]).start(), the_secrets, {}, tokens,
    )
    try:
        world.env = process_env(
            settings_for(configured, redis_server.url, llm.base_url,
                         the_secrets["llm_api_key"], folder)
        )
        for n in range(config.workers):
            world.workers.append(Service(
                f"worker{n}", python_module("bots.cli", "worker", f"--hostname=load{n}@%h"),
                world.env, folder).start())
        for n, token in enumerate(tokens):
            world.telegram.append(Service(f"telegram{n}", python_module("bots.telegram"),
                                          world.env | telegram_env(world, token), folder).start())
        slack_port = free_port()
        world.slack_url = f"http://127.0.0.1:{slack_port}/slack/events"
        world.slack = Service("slack", python_module("bots.slack"), world.env | {
            "CONCIERGE_SLACK_BOT_TOKEN": the_secrets["slack_bot_token"],
            "CONCIERGE_SLACK_SIGNING_SECRET": the_secrets["slack_signing_secret"],
            "CONCIERGE_SLACK_API_URL": world.slack_api.base_url,
            "CONCIERGE_SLACK_PORT": str(slack_port),
        }, folder).start()
        for worker in world.workers:
            wait_ready(lambda w=worker: worker_ready(w), worker.name, worker)
        wait_ready(lambda: slack_answers(world.slack_url), "slack", world.slack)
    except BaseException:
        world.close()
        raise
    return world


def telegram_env(world: World, token: str) -> dict[str, str]:
    return {
        "CONCIERGE_TELEGRAM_TOKEN": token,
        "CONCIERGE_TELEGRAM_BASE_URL": world.emulator.url,
        # No pause between getUpdates calls, as deployed: the emulator holds each one until an
        # update comes, as Telegram does.
        "CONCIERGE_TELEGRAM_POLL_INTERVAL_S": "0",
    }


def in_process_settings(world: World) -> Settings:
    """The settings of the terminal customers' core and the agent's desk in this process."""
    values: dict[str, Any] = {
        name.removeprefix("CONCIERGE_").lower(): value
        for name, value in world.env.items()
        if name.startswith("CONCIERGE_")
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Agent:
    """The support agent: answers each new ticket AGENT_REPLIES times, then hands it back."""

    desk: Any
    sent: list[AgentReply] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    errors: int = 0

    def round(self) -> None:
        try:
            tickets = self.desk.tickets.list(ACTIVE)
        except Exception:  # the store is down (a fault): try again next round
            self.errors += 1
            return
        for ticket in tickets:
            if ticket.id in self.done:
                continue
            try:
                for n in range(AGENT_REPLIES):
                    marker = f"{AGENT_MARK}{ticket.id}-{n}]"
                    if not any(r.marker == marker for r in self.sent):
                        self.desk.agent_reply(ticket.id, AGENT, f"Sorry about that, I'm on it "
                                              f"{marker}", f"load-{ticket.id}-{n}", "Sam")
                        self.sent.append(AgentReply(ticket.conversation_id, marker, time.time()))
                self.desk.hand_back(ticket.id, AGENT)
                self.done.add(ticket.id)
            except Exception:
                self.errors += 1
                log.exception("load.agent_failed")


async def warm_up(world: World, session: aiohttp.ClientSession, mailbox: TelegramInbox) -> None:
    """One message through each bot, so models are loaded before the clock starts."""
    for n, token in enumerate(world.tokens):
        channel = TelegramChannel(session, world.emulator.url, token, WARMUP_BASE_USER + n,
                                  mailbox)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if not world.telegram[n].alive:
                raise RuntimeError(f"telegram{n} exited while starting; see {world.folder}")
            await channel.say("hello")
            if channel.received:
                break
        else:
            raise RuntimeError(f"telegram{n} did not answer within {READY_S:.0f} s")


def build_faults(world: World) -> dict[str, Fault]:
    def kill_worker(window: Window) -> None:
        world.workers[0].stop(signal.SIGKILL, timeout=5)

    def restart_worker(window: Window) -> None:
        world.workers[0].start()
        window.notes["worker_restarted"] = True

    def stop_redis(window: Window) -> None:
        world.redis.shutdown()

    def start_redis(window: Window) -> None:
        world.redis.start()

    def llm(mode: str) -> Fault:
        def begin(window: Window) -> None:
            window.notes["llm_requests_before"] = world.llm.requests
            world.llm.mode = mode  # type: ignore[assignment]

        def finish(window: Window) -> None:
            world.llm.mode = "ok"
            before = int(str(window.notes.pop("llm_requests_before")))
            window.notes["llm_requests"] = world.llm.requests - before

        return Fault(begin, finish)

    def term_bot(window: Window) -> None:
        bot = world.telegram[0]
        bot.send(signal.SIGTERM)
        stopped = bot.wait(15)
        window.notes["exited_on_sigterm"] = stopped
        if not stopped:
            bot.stop(signal.SIGKILL)
        bot.start()

    def nothing(window: Window) -> None:
        return None

    return {
        "worker_kill": Fault(kill_worker, restart_worker),
        "redis_restart": Fault(stop_redis, start_redis),
        "llm_timeout": llm("timeout"),
        "llm_garbage": llm("garbage"),
        "bot_term": Fault(term_bot, nothing),
    }


@dataclass
class Run:
    """What the customers sent and what came back, gathered for the checks."""

    customers: list[SimulatedCustomer]
    flood_sent: list[Sent]
    windows: list[Window]
    agent: Agent
    started: float
    ended: float
    flood_chat: int | None


async def drive(world: World, config: LoadConfig) -> Run:
    loop = asyncio.get_running_loop()
    settings = in_process_settings(world)
    from bots.wiring import build_conversation, build_support_desk

    conversation = await asyncio.to_thread(build_conversation, settings, False)
    desk = await asyncio.to_thread(build_support_desk, settings)
    pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="terminal")
    mailbox = SlackInbox(loop)
    world.slack_api.listeners.append(mailbox.hear)
    agent = Agent(desk)
    deliveries: list[Deliveries] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with (
        aiohttp.ClientSession(connector=connector,
                              timeout=aiohttp.ClientTimeout(total=15)) as session,
        TelegramInbox(session, world.emulator.url).watching(world.tokens) as telegram,
    ):
        await warm_up(world, session, telegram)
        import random

        rng = random.Random(config.seed)
        customers = []
        for n in range(config.customers):
            platform = PLATFORMS[n % len(PLATFORMS)]
            channel: Any
            if platform == "telegram":
                token = world.tokens[(n // len(PLATFORMS)) % len(world.tokens)]
                channel = TelegramChannel(session, world.emulator.url, token,
                                          TELEGRAM_BASE_USER + n, telegram)
            elif platform == "slack":
                channel = SlackChannel(session, world.slack_url,
                                       world.secrets["slack_signing_secret"], f"U{n:06d}", mailbox)
            else:
                channel = TerminalChannel(conversation, pool, f"load{n}")
            escalates = rng.random() < ESCALATING_SHARE or n == 2  # one terminal customer at least
            customers.append(SimulatedCustomer(f"c{n}", channel, random.Random(rng.random()),
                                               config.think_s, escalates=escalates))

        def on_escalate(customer: SimulatedCustomer) -> None:
            channel = customer.channel
            if isinstance(channel, TerminalChannel):
                topic = customer_topic("terminal", channel.conversation_id)
                deliveries.append(Deliveries.to_customers(desk.queue, topic, channel.deliver,
                                                          wait_s=0.3).start())

        stop = asyncio.Event()
        windows = schedule(config.faults, config.seconds)
        flood_sent: list[Sent] = []
        flood_chat = TELEGRAM_BASE_USER + config.customers + 1

        async def on_flood(window: Window) -> None:
            channel = TelegramChannel(session, world.emulator.url, world.tokens[0], flood_chat,
                                      telegram)
            until = time.time() + window.length_s
            flood_sent.extend(await flood(channel, stop, FLOOD_PER_S, until))
            window.notes["sent"] = len(flood_sent)

        async def agent_loop() -> None:
            while not stop.is_set():
                await asyncio.to_thread(agent.round)
                await asyncio.sleep(0.5)

        started = time.time()
        tasks = [asyncio.create_task(c.run(stop, on_escalate)) for c in customers]
        helpers = [
            asyncio.create_task(run_faults(windows, build_faults(world), started, stop, on_flood)),
            asyncio.create_task(agent_loop()),
        ]
        await asyncio.sleep(config.seconds)
        stop.set()
        ended = time.time()
        await asyncio.wait(tasks, timeout=TURN_GRACE_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await asyncio.to_thread(agent.round)  # tickets opened in the last moments
        await settle(world, customers)
    for loop_ in deliveries:
        loop_.stop()
    pool.shutdown(wait=False, cancel_futures=True)
    return Run(customers, flood_sent, windows, agent, started, ended, flood_chat)


TURN_GRACE_S = 35.0  # customers finish the turn in flight (each waits at most 30 s)


async def settle(world: World, customers: Sequence[SimulatedCustomer]) -> None:
    """Wait until the stand-ins stop receiving (answers and agent replies still on the way)."""
    deadline = time.monotonic() + DRAIN_S
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(world.slack_api.calls) + len(world.emulator.calls())
        if count != last:
            last, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > QUIET_S:
            return
        await asyncio.sleep(0.5)


# -- what came back ----------------------------------------------------------------------------


def telegram_records(world: World, run: Run) -> tuple[list[Sent], dict[str, list[str]]]:
    """Every user message in the emulator, with the bot's answers to it; agent-side texts
    (messages not answering a message) per conversation."""
    sent: list[Sent] = []
    other: dict[str, list[str]] = defaultdict(list)
    for token in world.tokens:
        history = world.emulator.history(token)
        answers: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for item in history:
            message = item.get("message", {})
            if "chat_id" not in message:
                continue
            text, at = str(message.get("text", "")), item["time"] / 1000
            to = (message.get("reply_parameters") or {}).get("message_id")
            if to is None:
                other[f"telegram:{message['chat_id']}"].append(text)
            else:
                answers[str(to)].append((text, at))
        for item in history:
            message = item.get("message", {})
            if "chat_id" in message or "chat" not in message:
                continue
            chat = int(message["chat"]["id"])
            if chat >= WARMUP_BASE_USER:
                continue
            record = Sent("telegram", str(chat), str(item["messageId"]),
                          str(message.get("text", "")), item["time"] / 1000,
                          flood=chat == run.flood_chat)
            record.replies = answers.get(record.key, [])
            sent.append(record)
    return sent, other


def slack_records(world: World, run: Run) -> tuple[list[Sent], dict[str, list[str]]]:
    """Slack customers' messages with the posts in their thread attributed to the latest
    message sent before each post (a customer waits for the answer before writing again)."""
    posts: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for call in list(world.slack_api.calls):
        body = call["body"]
        if call["method"] == "chat.postMessage" and call["status"] == 200:
            key = (str(body.get("channel")), str(body.get("thread_ts")))
            posts[key].append((str(body.get("text", "")), float(call["at"])))
    sent, other = [], defaultdict(list)
    for customer in run.customers:
        channel = customer.channel
        if not isinstance(channel, SlackChannel) or channel.root is None:
            continue
        mine = sorted(customer.sent, key=lambda s: s.sent_at)
        for message in mine:
            message.replies = []
        for text, at in posts[(channel.channel, channel.root)]:
            if AGENT_MARK in text or text.startswith("Our support team"):
                other[channel.conversation_id].append(text)
                continue
            before = [m for m in mine if m.sent_at <= at]
            if before:
                before[-1].replies.append((text, at))
        sent += mine
    return sent, other


def terminal_records(run: Run) -> tuple[list[Sent], dict[str, list[str]]]:
    sent, other = [], {}
    for customer in run.customers:
        if isinstance(customer.channel, TerminalChannel):
            sent += customer.sent
            other[customer.channel.conversation_id] = list(customer.channel.received)
    return sent, other


def state_check(world: World, run: Run, records: Sequence[Sent]) -> dict[str, Any]:
    """Each customer's saved state against the turns they were answered. The Redis restart
    reloads its append-only file; a customer short of turns only from before the restart is
    still counted apart, to tell what the restart cost from any other loss."""
    from core.state.factory import open_state_store

    states = open_state_store(in_process_settings(world))
    restart = next((w for w in run.windows if w.fault == "redis_restart" and w.end), None)
    answered: dict[str, list[Sent]] = defaultdict(list)
    by_conversation = {conversation_id(c): c for c in run.customers}
    for record in records:
        if saved_a_turn(record) and not record.flood:
            answered[record.customer].append(record)
    expected = found = short = short_by_restart = 0
    for cid, customer in by_conversation.items():
        mine = answered.get(customer_key(customer), [])
        state = states.load(cid)
        expected += len(mine)
        found += state.turns
        if state.turns < len(mine):
            after = [m for m in mine if restart is None or m.sent_at > (restart.end or 0)]
            if restart is not None and state.turns >= len(after):
                short_by_restart += 1
            else:
                short += 1
    return {"turns_answered": expected, "turns_in_state": found,
            "customers_short": short, "customers_short_by_redis_restart": short_by_restart}


def conversation_id(customer: SimulatedCustomer) -> str:
    return customer.channel.conversation_id


def customer_key(customer: SimulatedCustomer) -> str:
    """How `Sent.customer` names this customer in the records."""
    channel = customer.channel
    if isinstance(channel, TelegramChannel):
        return str(channel.user_id)
    if isinstance(channel, SlackChannel):
        return channel.user
    assert isinstance(channel, TerminalChannel)
    return channel.user


def report(world: World, run: Run) -> dict[str, Any]:
    telegram, telegram_other = telegram_records(world, run)
    slack, slack_other = slack_records(world, run)
    terminal, terminal_other = terminal_records(run)
    everything = telegram + slack + terminal
    regular = [m for m in everything if not m.flood]
    flooded = [m for m in everything if m.flood]
    verdict = judge_messages(regular)
    flood_verdict = judge_messages(flooded)
    spans = [(w.start, w.end) for w in run.windows if w.start and w.end]
    seconds = run.ended - run.started
    received = {**telegram_other, **slack_other, **terminal_other}
    faults = {}
    for window in run.windows:
        if window.start is None or window.end is None:
            faults[window.fault] = {"ran": False, **window.notes}
            continue
        inside = [m for m in regular if window.start <= m.sent_at <= window.end + 2]
        judged = judge_messages(inside)
        faults[window.fault] = {
            "start": round(window.start - run.started, 1),
            "end": round(window.end - run.started, 1),
            "messages": len(inside), "lost": judged.lost, "duplicated": judged.duplicated,
            "errors": judged.errors, "busy": judged.busy,
            **{k: v for k, v in latency_figures(inside).items() if k in ("p50_ms", "p99_ms")},
            **window.notes,
        }
    if flooded:
        def in_flood(message: Sent) -> bool:
            return any(w.fault == "flood" and w.start and w.end and w.start <= message.sent_at
                       <= w.end + 2 for w in run.windows)

        others_in_flood = [m for m in regular if in_flood(m)]
        # The same run with no flood on: after every fault window and the customers' start.
        calm = [m for m in regular if not in_flood(m) and m.sent_at > run.started + 5
                and not any(w.start and w.end and w.start <= m.sent_at <= w.end + 2
                            for w in run.windows)]
        silent = silent_refusals(f"telegram:{run.flood_chat}", world.folder.glob("*.log"))
        flood_verdict.rate_limited += silent
        flood_verdict.lost = max(0, flood_verdict.lost - silent)
        faults.setdefault("flood", {})
        faults["flood"] |= {
            "flood_messages": len(flooded), "flood_answered": flood_verdict.turns,
            "flood_lost": flood_verdict.lost, "flood_rate_limited": flood_verdict.rate_limited,
            "flood_refused_silently": silent,
            "flood_busy": flood_verdict.busy,
            "others_p50_ms_during_flood": latency_figures(others_in_flood)["p50_ms"],
            "others_p50_ms_without_flood": latency_figures(calm)["p50_ms"],
        }
    in_window = [m for m in regular if m.sent_at <= run.ended]
    logs_found = sorted(world.folder.glob("*.log"))
    figures = latency_figures(regular, spans)
    return {
        "customers": world.config.customers, "seconds": round(seconds, 1),
        "bots": world.config.bots, "workers": world.config.workers,
        "think_s": list(world.config.think_s), "log_level": world.config.log_level,
        "turns": verdict.turns,
        "turns_per_s": round(sum(1 for m in in_window if saved_a_turn(m)) / seconds, 1),
        "p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"],
        "p99_ms_outside_faults": figures["p99_ms_calm"],
        "lost": verdict.lost + flood_verdict.lost,
        "duplicated": verdict.duplicated + flood_verdict.duplicated,
        "lost_examples": verdict.lost_examples, "duplicated_examples": verdict.duplicated_examples,
        "errors": verdict.errors,
        "agent_replies": judge_agent_replies(run.agent.sent, received),
        "rate_limited": verdict.rate_limited + flood_verdict.rate_limited,
        "busy": verdict.busy + flood_verdict.busy,
        "faults": faults,
        "state": state_check(world, run, regular),
        "secrets_in_logs": secrets_in_logs(world.secrets, logs_found),
        "llm_requests": world.llm.by_mode,
        "platforms": {
            platform: {
                "messages": sum(1 for m in regular if m.platform == platform),
                "answered": sum(1 for m in regular if m.platform == platform and m.replies),
                **{k: v for k, v in latency_figures(
                    [m for m in regular if m.platform == platform]).items()
                   if k in ("p50_ms", "p99_ms")},
            }
            for platform in PLATFORMS
        },
        "logs": str(world.folder) if world.config.keep else None,
    }


def summary(result: dict[str, Any]) -> str:
    agent = result["agent_replies"]
    lines = [
        f"{result['customers']} customers, {result['seconds']} s, {result['bots']} Telegram "
        f"bot(s), {result['workers']} worker(s)",
        f"turns {result['turns']}  ({result['turns_per_s']}/s)   p50 {result['p50_ms']} ms   "
        f"p99 {result['p99_ms']} ms   p99 outside faults {result['p99_ms_outside_faults']} ms",
        f"lost {result['lost']}   duplicated {result['duplicated']}   errors "
        f"{result['errors']}   busy {result['busy']}   rate-limited {result['rate_limited']}",
        f"agent replies: sent {agent['sent']}, received {agent['received']}, lost "
        f"{agent['lost']}, duplicated {agent['duplicated']}",
        f"state: {result['state']}",
        f"secrets in logs: {result['secrets_in_logs'] or 'none'}",
    ]
    for platform, counts in result["platforms"].items():
        lines.append(f"  {platform:<9} {counts}")
    for fault, figures in result["faults"].items():
        lines.append(f"  fault {fault:<14} {figures}")
    if result.get("cpu_s"):  # approximate: a process a fault killed is not counted
        lines.append(f"CPU seconds: {result['cpu_s']}")
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------------------


@contextlib.contextmanager
def run_folder(keep: bool) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="concierge-load-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def background_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread for the LLM stand-in while the world starts."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def run_load(config: LoadConfig, folder: Path) -> dict[str, Any]:
    """Start the world, drive the customers, check, stop everything; the JSON result."""
    handler = logging.FileHandler(folder / "harness.log")
    logs.configure(config.log_level, "text")
    root = logging.getLogger()
    handler.setFormatter(root.handlers[0].formatter)
    root.handlers[:] = [handler]
    with background_loop() as loop:
        world = start_world(config, folder, loop)
        try:
            run = asyncio.run_coroutine_threadsafe(drive(world, config), loop).result()
            result = report(world, run)
        finally:
            asyncio.run_coroutine_threadsafe(world.llm.stop(), loop).result(10)
            world.close()
    result["cpu_s"] = world.cpu_s
    # The services' logs are complete only now that they stopped: grep them again.
    result["secrets_in_logs"] = secrets_in_logs(world.secrets, sorted(folder.glob("*.log")))
    return result


def _seconds_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not MIN,MAX seconds: {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX: {text!r}")
    return bounds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge bench load", formatter_class=CommandHelp,
        description="Simulated customers through the real adapters (Telegram emulator, Slack\n"
                    "stand-in, terminal core) with Celery workers, its own Redis and an LLM\n"
                    "stand-in, faults injected while it runs; prints a summary to stderr and\n"
                    "one JSON line to stdout. Needs node (the Telegram emulator) and\n"
                    "/usr/bin/redis-server; the trained models (`concierge train`).")
    parser.add_argument("--customers", type=int, default=200, help="simulated customers")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they talk")
    parser.add_argument("--bots", type=int, default=1, help="Telegram bot processes")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--faults", default="all",
                        help="all, none, or a list of: worker_kill,redis_restart,llm_timeout,"
                             "llm_garbage,bot_term,flood")
    parser.add_argument("--flood", action="store_true", help="add the flooding customer")
    parser.add_argument("--understander", choices=("cascade", "local", "llm"), default="cascade",
                        help="how messages are understood: the LLM stand-in first, then the "
                             "local model (cascade), or only one of them")
    parser.add_argument("--encoder-precision", choices=("float", "int8"), default="float",
                        help="the local model's MiniLM encoder (CONCIERGE_ENCODER_PRECISION)")
    parser.add_argument("--think", type=_seconds_range, default=(1.0, 3.0), metavar="MIN,MAX",
                        help="seconds each customer waits between messages; sets the offered load")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO"), default="DEBUG",
                        help="every process's log level: DEBUG checks every line for secrets, "
                             "INFO costs what a deployment's logging costs")
    parser.add_argument("--seed", type=int, default=7,
                        help="the customers' choices and the fault schedule follow from it")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and logs")
    args = parser.parse_args(argv)
    try:
        faults = chosen_faults(args.faults, args.flood)
    except ValueError as error:
        parser.error(str(error))
    config = LoadConfig(args.customers, args.seconds, max(1, args.bots), max(1, args.workers),
                        faults, args.seed, args.understander, args.encoder_precision,
                        think_s=args.think, log_level=args.log_level, keep=args.keep)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # stop everything on SIGTERM, as on Ctrl-C
    with run_folder(args.keep) as folder:
        try:
            result = run_load(config, folder)
        except KeyboardInterrupt:
            print("concierge bench load: interrupted; everything it started is stopped",
                  file=sys.stderr)
            return 130
        print(summary(result), file=sys.stderr)
        print(json.dumps(result))
    return 0
