"""A real Telegram or Slack bot process whose turns take a set time: lets a test land SIGTERM or
SIGKILL in the middle of a turn. `python -m tests.e2e.slow_bot KIND SECONDS` (KIND telegram or
slack).

It runs the adapter's own `main()` (settings from the environment, SQLite state, the inbox and
the platform code); only understanding is replaced: every message is a greeting, understood
after SECONDS, and each start of understanding is written to stderr ("understanding: <text>"),
so the test knows a turn is in flight.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from bots import wiring
from core.infra.settings import Settings
from core.turn.understanding import Intent
from tests.bots.slow_chat import SlowUnderstander


def main(argv: Sequence[str]) -> int:
    kind, seconds = argv[0], float(argv[1])

    def slow(
        settings: Settings, backend: object = None, vocabulary: object = None,
        database: object = None,
    ) -> SlowUnderstander:
        return SlowUnderstander(seconds, Intent.GREETING)

    wiring.build_understander = slow
    modules = {"telegram": "bots.telegram", "slack": "bots.slack.app"}
    return int(importlib.import_module(modules[kind]).main([]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
