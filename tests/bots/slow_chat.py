"""The terminal chat with every message taking a set time to understand: lets a test land
SIGTERM in the middle of a turn. Run as `python -m tests.bots.slow_chat SECONDS USER`.

Everything but the understander is the real wiring: demo store, SQLite state, the terminal
adapter's own `serve_chat`. The understander answers the policy questions the test sends.
"""

from __future__ import annotations

import sys
import time

from bots.terminal import serve_chat
from bots.wiring import configure_logging
from core.infra.settings import Settings
from core.shop.files import load_shop
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from core.turn.conversation import Conversation, Services
from core.turn.recommendation import RecommendationRequest, RecommenderUnavailable, Suggestion
from core.turn.understanding import Intent, Understanding


class SlowUnderstander:
    """Every message takes `seconds` and is understood as `intent`; each start is written to
    stderr ("understanding: <text>"), so a test knows a turn is in flight."""

    def __init__(self, seconds: float, intent: Intent = Intent.RETURN_REFUND) -> None:
        self.seconds = seconds
        self.intent = intent

    def understand(self, text: str, state: ConversationState) -> Understanding:
        sys.stderr.write(f"understanding: {text}\n")
        sys.stderr.flush()
        time.sleep(self.seconds)
        return Understanding(intent=self.intent, confidence=0.99, source="slow")


class NoRecommender:
    def recommend(self, request: RecommendationRequest) -> list[Suggestion]:
        raise RecommenderUnavailable("not part of this test")


def main() -> int:
    seconds, user = float(sys.argv[1]), sys.argv[2]
    settings = Settings()
    configure_logging(settings)
    store = load_shop(settings.demo_dir)
    services = Services(
        store=SqliteStateStore(settings.sqlite_path),
        understander=SlowUnderstander(seconds),
        recommender=NoRecommender(),
        catalog=store.catalog,
        orders=store.orders,
        knowledge=store.knowledge,
    )
    return serve_chat(settings, Conversation(services), user)


if __name__ == "__main__":
    raise SystemExit(main())
