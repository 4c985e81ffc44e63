"""Faults injected while customers talk, each in a window of its own, logged with its times.

- worker_kill: a Celery worker's process group gets SIGKILL (no ack, no requeue), and a new
  worker is started at the end of the window.
- redis_restart: the run's Redis is stopped (SHUTDOWN, as an orchestrator stops it) and started
  again from its append-only file, as the compose file runs it; turns meanwhile get the
  store-down apology (counted as errors).
- llm_timeout, llm_garbage: the LLM stand-in holds requests past the client's timeout, or
  answers with a body that is not JSON; the local model must answer instead.
- bot_term: a Telegram bot process gets SIGTERM (as an orchestrator stops it) and is restarted.
- flood: one more Telegram customer sends 100 messages a second for the window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from core.infra.logs import event

log = logging.getLogger(__name__)

FAULTS = ("worker_kill", "redis_restart", "llm_timeout", "llm_garbage", "bot_term", "flood")
WINDOW_MAX_S = 8.0
FIRST_AT = 0.15  # faults start after this share of the run (a calm baseline first) ...
LAST_AT = 0.85  # ... and end before this share (a calm tail to recover in)


def chosen_faults(spec: str, flood: bool = False) -> tuple[str, ...]:
    """`all`, `none` or a comma-separated list of FAULTS; `flood` adds the flood."""
    if spec == "all":
        names = list(FAULTS)
    elif spec == "none":
        names = []
    else:
        names = [name.strip() for name in spec.split(",") if name.strip()]
        unknown = sorted(set(names) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    if flood and "flood" not in names:
        names.append("flood")
    return tuple(names)


@dataclass
class Window:
    """One fault's window; `start`/`end` are unix seconds once it ran."""

    fault: str
    offset_s: float  # from the start of the run
    length_s: float
    start: float | None = None
    end: float | None = None
    notes: dict[str, object] = field(default_factory=dict)


def schedule(faults: Sequence[str], seconds: float) -> list[Window]:
    """Windows spread evenly over the middle of the run, one after another."""
    if not faults:
        return []
    span = seconds * (LAST_AT - FIRST_AT)
    slot = span / len(faults)
    length = min(WINDOW_MAX_S, slot * 0.6)
    return [
        Window(fault, seconds * FIRST_AT + n * slot, length) for n, fault in enumerate(faults)
    ]


@dataclass
class Fault:
    """What a fault does at the start and at the end of its window (in worker threads)."""

    begin: Callable[[Window], object]
    finish: Callable[[Window], object]


async def run_faults(
    windows: Sequence[Window],
    faults: dict[str, Fault],
    started: float,
    stop: asyncio.Event,
    on_flood: Callable[[Window], Awaitable[object]] | None = None,
) -> None:
    """Carry out each window at its time; a fault that fails is noted, and the run goes on."""
    for window in windows:
        delay = started + window.offset_s - time.time()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return  # stopped early
            except TimeoutError:
                pass
        window.start = time.time()
        event(log, "load.fault_start", fault=window.fault)
        try:
            if window.fault == "flood" and on_flood is not None:
                await on_flood(window)
            else:
                fault = faults[window.fault]
                await asyncio.to_thread(fault.begin, window)
                await asyncio.sleep(window.length_s)
                await asyncio.to_thread(fault.finish, window)
        except Exception as error:  # a fault that could not be injected is a finding, not a crash
            window.notes["error"] = repr(error)[:200]
            log.exception("load.fault_failed")
        window.end = time.time()
        event(log, "load.fault_end", fault=window.fault,
              seconds=round(window.end - window.start, 1))

