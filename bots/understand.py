"""`concierge understand`: the configured understanding backend over JSON lines, for scripts
and for checking what the assistant makes of a message.

    echo '{"text": "where is order 48213?"}' | concierge understand --backend local
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from core.infra.commands import CommandHelp
from core.infra.settings import Settings
from core.llm.understanders import CascadeUnderstander
from core.state.store import ConversationState, Turn
from core.turn.taxonomy import TaxonomyError
from core.turn.understanding import Understander


def history_state(history: Any) -> ConversationState:
    """A conversation state holding `history`: strings (the customer's) or {"role", "text"}."""
    turns: list[Turn] = []
    for item in history or ():
        if isinstance(item, str):
            turns.append(Turn(role="customer", text=item, at=0.0))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            role = item.get("role")
            if role == "assistant":
                turns.append(Turn(role="assistant", text=item["text"], at=0.0))
            elif role == "agent":
                turns.append(Turn(role="agent", text=item["text"], at=0.0))
            else:
                turns.append(Turn(role="customer", text=item["text"], at=0.0))
    return ConversationState(conversation_id="cli", transcript=tuple(turns))


def understand_lines(understander: Understander, lines: TextIO, out: TextIO) -> int:
    """One JSON line out per line in; a bad line gets an error line, nothing is skipped."""
    count = 0
    for line in lines:
        if not line.strip():
            continue
        count += 1
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise ValueError('expected an object with a "text" string')
        except ValueError as exc:
            out.write(json.dumps({"error": f"line {count}: {exc}"}) + "\n")
            continue
        started = time.perf_counter()
        result = understander.understand(item["text"], history_state(item.get("history")))
        body = result.model_dump(mode="json")
        body["ms"] = round((time.perf_counter() - started) * 1000, 1)
        out.write(json.dumps(body, ensure_ascii=False) + "\n")
        out.flush()
    return count


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge understand [--backend local|llm|cascade]`: JSON lines in, JSON lines out."""
    parser = argparse.ArgumentParser(
        prog="concierge understand",
        description='Reads {"text": ..., "history": [...]} lines on stdin, writes one\n'
        "understanding per line.",
        formatter_class=CommandHelp,
    )
    parser.add_argument(
        "--backend", choices=["local", "llm", "cascade"], default="local",
        help="the local model, the LLM (local model as fallback), or local first then the LLM",
    )
    args = parser.parse_args(argv)
    from bots.wiring import build_understander, configure_logging

    settings = settings or Settings()
    configure_logging(settings)
    try:
        understander = build_understander(settings, args.backend)
    except (FileNotFoundError, ValueError, TaxonomyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    understand_lines(understander, sys.stdin, sys.stdout)
    if isinstance(understander, CascadeUnderstander):
        stats = understander.stats
        print(f"cascade: {stats.messages} messages, {stats.llm_calls} LLM calls, "
              f"{stats.saved} saved", file=sys.stderr)
    return 0
