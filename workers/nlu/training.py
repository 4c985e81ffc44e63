"""Training the local understanding model from the taxonomy file (`concierge train nlu`)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from core.logs import event
from core.taxonomy import Taxonomy, load_taxonomy
from workers.nlu.model import NluConfig, NluModel, train_model

log = logging.getLogger(__name__)

# Public Bitext customer-service intents that mean the same as a taxonomy intent. Intents with
# no clean counterpart (place_order, review, ...) are left out rather than forced.
BITEXT_TO_TAXONOMY = {
    "track_order": "order_status",
    "cancel_order": "cancel_or_change_order",
    "change_order": "cancel_or_change_order",
    "change_shipping_address": "cancel_or_change_order",
    "get_refund": "return_refund",
    "track_refund": "return_refund",
    "check_refund_policy": "return_refund",
    "payment_issue": "payment",
    "check_payment_methods": "payment",
    "check_invoice": "payment",
    "get_invoice": "payment",
    "delivery_options": "shipping",
    "create_account": "account",
    "delete_account": "account",
    "edit_account": "account",
    "recover_password": "account",
    "registration_problems": "account",
    "newsletter_subscription": "account",
    "complaint": "complaint",
    "contact_human_agent": "human_agent",
}
BITEXT_FILE = Path("bitext") / "Bitext_Sample_Customer_Support_Training_Dataset_2023-08-18.csv"


@dataclass(frozen=True)
class TrainingReport:
    directory: Path
    intent_examples: int
    sentiment_examples: int
    seconds: float


def public_examples(data_dir: Path, per_intent: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to `per_intent` Bitext messages per mapped public intent, as (text, taxonomy intent)."""
    path = data_dir / BITEXT_FILE
    by_intent: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["intent"] in BITEXT_TO_TAXONOMY:
                by_intent[row["intent"]].append(row["instruction"].strip())
    rng = random.Random(seed)
    examples: list[tuple[str, str]] = []
    for name in sorted(by_intent):
        texts = sorted(set(by_intent[name]))
        rng.shuffle(texts)
        examples += [(text, BITEXT_TO_TAXONOMY[name]) for text in texts[:per_intent]]
    return examples


TWEETEVAL_LABELS = {"0": "negative", "1": "neutral", "2": "positive"}


def public_sentiment(data_dir: Path, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` TweetEval validation tweets with their 3-class sentiment."""
    folder = data_dir / "tweeteval_sentiment"
    texts = (folder / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (folder / "val_labels.txt").read_text(encoding="utf-8").split()
    pairs = [(t.strip(), TWEETEVAL_LABELS[y]) for t, y in zip(texts, labels, strict=True)]
    return [(t, y) for t, y in pairs if t][:limit]


def training_sets(
    taxonomy: Taxonomy,
    data_dir: Path | None = None,
    public_per_intent: int = 0,
    public_sentiment_limit: int = 0,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(intent examples, sentiment examples): the taxonomy's, plus public ones if asked."""
    intents = taxonomy.intent_examples()
    sentiments = list(taxonomy.sentiment_examples)
    if data_dir is not None and public_per_intent > 0:
        intents += public_examples(data_dir, public_per_intent)
    if data_dir is not None and public_sentiment_limit > 0:
        sentiments += public_sentiment(data_dir, public_sentiment_limit)
    return intents, sentiments


def code_version(taxonomy_path: Path) -> str:
    """A fingerprint of what a model was built from (model and training code, taxonomy file):
    equal fingerprints mean a saved model is current and can be reused."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in (here / "minilm.py", here / "model.py", here / "training.py", taxonomy_path):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_current(model_dir: Path, taxonomy_path: Path) -> bool:
    """Whether `model_dir` holds a model trained by this code from this taxonomy file."""
    try:
        summary = json.loads((model_dir / "nlu.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(
        (model_dir / "nlu.joblib").exists()
        and summary.get("code_version") == code_version(taxonomy_path)
    )


def train_nlu(
    taxonomy_path: Path,
    out_dir: Path,
    data_dir: Path | None = None,
    public_per_intent: int = 0,
    public_sentiment_limit: int = 0,
    config: NluConfig | None = None,
) -> TrainingReport:
    """Train intent and sentiment heads from the taxonomy file and save them in `out_dir`."""
    started = time.perf_counter()
    taxonomy = load_taxonomy(taxonomy_path)
    intents, sentiments = training_sets(
        taxonomy, data_dir, public_per_intent, public_sentiment_limit
    )
    model: NluModel = train_model(intents, sentiments, config or NluConfig())
    model.meta |= {
        "taxonomy": str(taxonomy_path),
        "taxonomy_version": taxonomy.version,
        "public_per_intent": public_per_intent,
        "public_sentiment": public_sentiment_limit,
        "code_version": code_version(taxonomy_path),
    }
    model.save(out_dir)
    seconds = time.perf_counter() - started
    event(log, "nlu.trained", directory=str(out_dir), intents=len(intents),
          sentiments=len(sentiments), seconds=round(seconds, 1))
    return TrainingReport(out_dir, len(intents), len(sentiments), seconds)
