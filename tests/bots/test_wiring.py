"""The composition root: what each adapter's process loads, checked on `sys.modules` in a fresh
interpreter after its services are built exactly as its `main()` builds them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bots.wiring import FirstUseUnderstander, slot_vocabulary
from core.infra.settings import Settings
from core.shopdb.database import ShopDatabase
from core.shopdb.importer import import_store
from core.state.store import ConversationState
from core.turn.slots import extract_slots
from core.turn.understanding import Intent, Understanding
from tests.processes import clean_env

# Built as in each adapter's main(); the last line prints what was imported.
BUILD = {
    "terminal": "from bots.wiring import build_conversation\n"
    "conversation = build_conversation(settings)\n",
    "telegram": "from bots.wiring import build_conversation\n"
    "from bots.ledger.factory import open_ledger\n"
    "from bots.telegram import telegram_adapter\n"
    "conversation = build_conversation(settings)\n"
    "telegram_adapter(settings, conversation.handle, open_ledger(settings))\n",
    "slack": "from bots.wiring import build_conversation\n"
    "from bots.ledger.factory import open_ledger\n"
    "from bots.slack.app import install_handover\n"
    "from bots.slack.customers import slack_adapter\n"
    "conversation = build_conversation(settings)\n"
    "adapter = slack_adapter(settings, conversation.handle, open_ledger(settings))\n"
    "install_handover(settings, conversation, adapter)\n",
}
HEAVY = ("torch", "sklearn", "scipy", "transformers", "workers.nlu.training",
         "workers.nlu.bench", "workers.recommender.train", "workers.recommender.evaluate")


def loaded_after_building(adapter: str, tmp_path: Path, **settings: str) -> list[str]:
    script = (
        "import sys, json\n"
        "from core.infra.settings import Settings\n"
        "settings = Settings()\n"
        + BUILD[adapter]
        + f"heavy = {HEAVY!r}\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted(m for m in heavy if m in top or m in sys.modules)))\n"
    )
    env = clean_env(
        sqlite_path=tmp_path / "state.sqlite3",
        telegram_token="123456:" + "A" * 35,
        slack_bot_token="xoxb-test",
        slack_signing_secret="0" * 32,
        log_level="WARNING",
        **settings,
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("adapter", sorted(BUILD))
def test_scaled_bot_process_imports_no_torch(adapter: str, tmp_path: Path) -> None:
    """LLM understanding and Celery scoring: the process holds no model and no torch."""
    loaded = loaded_after_building(adapter, tmp_path, understander="llm", recommender="celery")
    print(f"{adapter} (llm + celery) loaded: {loaded}")
    assert loaded == []


@pytest.mark.parametrize("adapter", sorted(BUILD))
def test_embedded_bot_process_imports_no_training_code(adapter: str, tmp_path: Path) -> None:
    """The embedded default runs the models in-process (torch), never training code."""
    loaded = loaded_after_building(adapter, tmp_path)
    print(f"{adapter} (local + inprocess) loaded: {loaded}")
    assert loaded == ["torch"]  # the check sees torch when it is there


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def understand(self, text: str, state: ConversationState) -> Understanding:
        self.calls += 1
        return Understanding(intent=Intent.GREETING, source="counting")


def test_fallback_is_built_on_first_use_only() -> None:
    built: list[Counting] = []

    def build() -> Counting:
        built.append(Counting())
        return built[-1]

    lazy = FirstUseUnderstander(build)
    assert built == []
    state = ConversationState(conversation_id="c")
    assert lazy.understand("hi", state).intent is Intent.GREETING
    assert lazy.understand("hello", state).source == "counting"
    assert len(built) == 1 and built[0].calls == 2


def test_slot_vocabulary_follows_the_stores_catalog_and_synonyms(tmp_path: Path) -> None:
    product = {"id": "x-1", "title": "Orchid Night", "brand": "Maison Talia",
               "category": "Fragrance", "subcategory": "Eau de Parfum", "price": 30.0}
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps(product) + "\n")
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'store.sqlite3'}", store_check_s=0)
    database = ShopDatabase(settings.store_url.get_secret_value())
    import_store(database, {"catalog": catalog})
    vocabulary = slot_vocabulary(settings)
    assert extract_slots("an eau de parfum", vocabulary.current()).category == "fragrance"
    assert extract_slots("a perfume", vocabulary.current()).category is None
    # The shop adds its own word while the process runs: the next message knows it.
    synonyms = tmp_path / "synonyms.jsonl"
    synonyms.write_text('{"phrase": "perfume", "category": "Fragrance"}\n')
    import_store(database, {"synonyms": synonyms})
    database.close()
    assert extract_slots("a perfume", vocabulary.current()).category == "fragrance"
