"""Training the local understanding model from the taxonomy file (`concierge train nlu`)."""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from core.infra.logs import event
from core.turn.taxonomy import Taxonomy, load_taxonomy
from workers.fingerprint import file_digest
from workers.nlu.augment import Ask, Augmenter
from workers.nlu.model import (
    SUMMARY,
    WEIGHTS,
    Head,
    NgramTable,
    NluConfig,
    NluModel,
    embed,
    softmax,
)

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


def vectorizers(config: NluConfig, texts: Sequence[str]) -> tuple[TfidfVectorizer, TfidfVectorizer]:
    word = TfidfVectorizer(ngram_range=config.word_ngrams, sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams, sublinear_tf=True,
                           min_df=config.char_min_df)
    word.fit(texts)
    try:
        char.fit(texts)
    except ValueError:  # tiny corpora: no character n-gram reaches min_df
        char.set_params(min_df=1).fit(texts)
    return word, char


def table(vectorizer: TfidfVectorizer) -> NgramTable:
    low, high = vectorizer.ngram_range
    vocabulary = {gram: int(column) for gram, column in vectorizer.vocabulary_.items()}
    return NgramTable(str(vectorizer.analyzer), low, high, vocabulary,
                      vectorizer.idf_.astype(np.float32))


def features(
    dense: np.ndarray, word: TfidfVectorizer, char: TfidfVectorizer, texts: Sequence[str],
    weight: float,
) -> Any:
    """[embeddings | weight * word tf-idf | weight * char tf-idf]: (N, D), sparse."""
    blocks = [sparse.csr_matrix(dense), weight * word.transform(texts),
              weight * char.transform(texts)]
    return sparse.hstack(blocks, format="csr")


def _scores(classifier: LogisticRegression, x: Any) -> np.ndarray:
    scores = classifier.decision_function(x)
    return np.stack([-scores, scores], axis=1) / 2 if scores.ndim == 1 else scores


def fit_temperature(scores: np.ndarray, target: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of held-out scores (grid search:
    one parameter, so a fine grid is exact enough and never diverges)."""
    best, best_nll = 1.0, float("inf")
    for temperature in np.exp(np.linspace(np.log(0.05), np.log(20.0), 200)):
        probs = softmax(scores / temperature)
        nll = -np.log(probs[np.arange(len(target)), target] + 1e-12).mean()
        if nll < best_nll:
            best, best_nll = float(temperature), float(nll)
    return best


def fit_head(x: Any, labels: Sequence[str], config: NluConfig, sizes: tuple[int, int]) -> Head:
    """One logistic-regression head; with `config.calibrate`, its temperature is fitted on
    out-of-fold scores. `sizes` are the embedding and word n-gram widths of `x`'s columns."""
    names = tuple(sorted(set(labels)))
    target = np.array([names.index(label) for label in labels])

    def new() -> LogisticRegression:
        return LogisticRegression(C=config.c, max_iter=config.max_iter)

    classifier = new().fit(x, target)
    temperature = 1.0
    smallest = int(np.bincount(target).min())
    if config.calibrate and smallest >= 2:
        folds = StratifiedKFold(n_splits=min(config.folds, smallest), shuffle=True, random_state=0)
        scores = np.zeros((len(target), len(names)))
        for train, test in folds.split(np.zeros(len(target)), target):
            scores[test] = _scores(new().fit(x[train], target[train]), x[test])
        temperature = fit_temperature(scores, target)
    coef = classifier.coef_.astype(np.float32)  # (K', D)
    dense_width, word_width = sizes
    return Head(names, coef[:, :dense_width], coef[:, dense_width : dense_width + word_width],
                coef[:, dense_width + word_width :], classifier.intercept_.astype(np.float32),
                temperature)


def train_model(
    intent_data: Sequence[tuple[str, str]],
    sentiment_data: Sequence[tuple[str, str]] = (),
    config: NluConfig | None = None,
    say: Callable[[str], None] | None = None,
) -> NluModel:
    """Fit n-gram tables and heads on (text, label) pairs; each text is encoded once (after
    the encoder is fine-tuned on them, with `config.method` "lora"). `say`: progress lines."""
    config = config or NluConfig()
    started = time.perf_counter()
    texts = [text for text, _ in intent_data]
    sentiment_texts = [text for text, _ in sentiment_data]
    all_texts = list(dict.fromkeys([*texts, *sentiment_texts]))
    adapter = None
    if config.method == "lora":
        from workers.nlu.lora import LoraConfig, tune_encoder

        tasks = [task for task in (intent_data, sentiment_data) if task]
        adapter = tune_encoder(tasks, LoraConfig(rank=config.lora_rank,
                                                 epochs=config.lora_epochs), say)
    tuned = time.perf_counter()
    vectors = embed(all_texts, config.layers, adapter=adapter)
    row = {text: i for i, text in enumerate(all_texts)}
    encoded = time.perf_counter()
    word, char = vectorizers(config, all_texts)
    sizes = (vectors.shape[1], len(word.vocabulary_))

    def head(data: Sequence[tuple[str, str]]) -> Head:
        rows = [text for text, _ in data]
        x = features(vectors[[row[t] for t in rows]], word, char, rows, config.ngram_weight)
        return fit_head(x, [label for _, label in data], config, sizes)

    intent = head(intent_data)
    sentiment = head(sentiment_data) if sentiment_data else None
    meta = {
        "intent_examples": len(intent_data),
        "sentiment_examples": len(sentiment_data),
        "tune_s": round(tuned - started, 1),
        "encode_s": round(encoded - tuned, 1),
        "train_s": round(time.perf_counter() - started, 1),
        "intent_temperature": round(intent.temperature, 3),
        "sentiment_temperature": round(sentiment.temperature, 3) if sentiment else None,
    }
    return NluModel(config, table(word), table(char), intent, sentiment, meta, adapter=adapter)


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
    here = Path(__file__).resolve().parent
    encoder = here.parent / "minilm.py"
    return file_digest((encoder, here / "model.py", here / "training.py", here / "lora.py",
                        taxonomy_path))


def is_current(model_dir: Path, taxonomy_path: Path) -> bool:
    """Whether `model_dir` holds a model trained by this code from this taxonomy file."""
    try:
        summary = json.loads((model_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        (model_dir / WEIGHTS).exists()
        and summary.get("code_version") == code_version(taxonomy_path)
    )


def train_nlu(
    taxonomy_path: Path,
    out_dir: Path,
    data_dir: Path | None = None,
    public_per_intent: int = 0,
    public_sentiment_limit: int = 0,
    config: NluConfig | None = None,
    augment: tuple[Augmenter, Ask | None] | None = None,
) -> TrainingReport:
    """Train intent and sentiment heads from the taxonomy file and save them in `out_dir`;
    `augment` (an augmenter and an optional LLM) adds paraphrases of the taxonomy examples."""
    started = time.perf_counter()
    taxonomy = load_taxonomy(taxonomy_path)
    intents, sentiments = training_sets(
        taxonomy, data_dir, public_per_intent, public_sentiment_limit
    )
    paraphrases = 0
    if augment is not None:
        augmenter, ask = augment
        added = replace(augmenter, examples=taxonomy.intent_examples()).augment(ask)
        intents += added
        paraphrases = len(added)
    model = train_model(intents, sentiments, config)
    model.meta |= {
        "taxonomy": str(taxonomy_path),
        "taxonomy_version": taxonomy.version,
        "public_per_intent": public_per_intent,
        "public_sentiment": public_sentiment_limit,
        "paraphrases": paraphrases,
        "code_version": code_version(taxonomy_path),
    }
    model.save(out_dir)
    seconds = time.perf_counter() - started
    event(log, "nlu.trained", directory=str(out_dir), intents=len(intents),
          sentiments=len(sentiments), seconds=round(seconds, 1))
    return TrainingReport(out_dir, len(intents), len(sentiments), seconds)
