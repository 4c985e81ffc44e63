"""The local understanding model on the held-out messages (`concierge eval nlu`): the accuracy
line the benchmark prints too, precision / recall / F1 per intent (printed, and written as CSV)
and a confusion-matrix plot (PNG), ending with one JSON line of figures.

`answer_heldout` is the one place that runs a model over the held-out set; `concierge bench nlu
--heldout` uses it as well.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from core.state.store import ConversationState
from core.turn.taxonomy import LabelledMessage, load_labelled
from core.turn.understanding import Intent, Understanding
from workers.minilm import Precision
from workers.nlu.understander import LocalUnderstander

TABLE = "intents.csv"
CONFUSION = "confusion.png"
AVERAGES = ("macro avg", "weighted avg")


@dataclass(frozen=True)
class HeldoutAnswers:
    """The held-out messages and what a model understood of each, in the same order."""

    messages: list[LabelledMessage]
    results: list[Understanding]

    def intent_hits(self) -> list[bool]:
        return [r.intent.value == m.intent for r, m in zip(self.results, self.messages,
                                                           strict=True)]

    def sentiment_hits(self) -> list[bool]:
        return [r.sentiment.value == m.sentiment for r, m in zip(self.results, self.messages,
                                                                 strict=True)]

    def accuracy(self) -> dict[str, int | float]:
        count = max(1, len(self.messages))
        return {
            "messages": len(self.messages),
            "intent_accuracy": round(sum(self.intent_hits()) / count, 4),
            "sentiment_accuracy": round(sum(self.sentiment_hits()) / count, 4),
        }

    def accuracy_line(self) -> str:
        figures = self.accuracy()
        return (f"held-out: {figures['messages']} messages, intent accuracy "
                f"{figures['intent_accuracy']:.3f}, sentiment accuracy "
                f"{figures['sentiment_accuracy']:.3f}")

    def intent_labels(self) -> list[str]:
        """Every intent that is true or predicted somewhere, in the core's order (related
        intents side by side), then any the core does not know."""
        present = {m.intent for m in self.messages} | {r.intent.value for r in self.results}
        known = [intent.value for intent in Intent if intent.value in present]
        return known + sorted(present - set(known))


def answer_heldout(understander: LocalUnderstander, heldout_path: Path) -> HeldoutAnswers:
    """Run the model over every held-out message, each as the first of its conversation."""
    messages = load_labelled(heldout_path)
    state = ConversationState(conversation_id="heldout")
    return HeldoutAnswers(messages, [understander.understand(m.text, state) for m in messages])


@dataclass(frozen=True)
class IntentScore:
    intent: str  # or "macro avg" / "weighted avg"
    precision: float
    recall: float
    f1: float
    support: int


def intent_scores(answers: HeldoutAnswers) -> list[IntentScore]:
    """Precision, recall, F1 and support per intent, then their macro and weighted averages
    (an intent never predicted has precision 0)."""
    labels = answers.intent_labels()
    truth = [m.intent for m in answers.messages]
    predicted = [r.intent.value for r in answers.results]
    scores = []
    for label, precision, recall, f1, support in zip(
        labels, *precision_recall_fscore_support(truth, predicted, labels=labels,
                                                 zero_division=0), strict=True):
        scores.append(IntentScore(label, float(precision), float(recall), float(f1),
                                  int(support)))
    for average in AVERAGES:
        precision, recall, f1, _ = precision_recall_fscore_support(
            truth, predicted, labels=labels, average=average.split()[0], zero_division=0)
        scores.append(IntentScore(average, float(precision), float(recall), float(f1),
                                  len(truth)))
    return scores


def score_table(scores: list[IntentScore]) -> str:
    width = max(len("intent"), *(len(score.intent) for score in scores))
    lines = [f"{'intent':<{width}}  precision  recall     f1  support"]
    for score in scores:
        if score.intent == AVERAGES[0]:
            lines.append("")
        lines.append(f"{score.intent:<{width}}  {score.precision:9.3f}  {score.recall:6.3f}  "
                     f"{score.f1:5.3f}  {score.support:7d}")
    return "\n".join(lines)


def write_score_csv(scores: list[IntentScore], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["intent", "precision", "recall", "f1", "support"])
        for score in scores:
            writer.writerow([score.intent, f"{score.precision:.4f}", f"{score.recall:.4f}",
                             f"{score.f1:.4f}", score.support])


def plot_confusion(answers: HeldoutAnswers, path: Path) -> None:
    """True intents down, predicted across, each cell the number of messages."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = answers.intent_labels()
    matrix = confusion_matrix([m.intent for m in answers.messages],
                              [r.intent.value for r in answers.results], labels=labels)
    size = 2.5 + 0.45 * len(labels)
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)  # the Agg canvas: a PNG file, no display needed
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("true intent")
    ax.set_title(f"held-out messages ({len(answers.messages)})")
    threshold = matrix.max() / 2 if matrix.size else 0
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            if count:
                ax.text(column, row, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > threshold else "black")
    figure.colorbar(image, ax=ax, shrink=0.8)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=110)


def evaluate_nlu(
    model_dir: Path,
    heldout_path: Path,
    out_dir: Path,
    say: Callable[[str], None] = print,
    precision: Precision = "float",
) -> dict[str, object]:
    """Evaluate the model in `model_dir` with the encoder at `precision`; writes the table
    (CSV) and the confusion matrix (PNG) into `out_dir` and returns the figures."""
    understander = LocalUnderstander.load(model_dir, precision=precision)
    answers = answer_heldout(understander, heldout_path)
    scores = intent_scores(answers)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_score_csv(scores, out_dir / TABLE)
    plot_confusion(answers, out_dir / CONFUSION)
    say(answers.accuracy_line())
    say("")
    say(score_table(scores))
    say("")
    say(f"wrote {out_dir / TABLE} and {out_dir / CONFUSION}")
    averages = {score.intent: score for score in scores if score.intent in AVERAGES}
    return {
        "eval": "nlu",
        "model": str(model_dir),
        "encoder_precision": precision,
        "heldout": str(heldout_path),
        **answers.accuracy(),
        "intent_macro_f1": round(averages["macro avg"].f1, 4),
        "intent_weighted_f1": round(averages["weighted avg"].f1, 4),
        "intents": len(scores) - len(AVERAGES),
        "table": str(out_dir / TABLE),
        "confusion": str(out_dir / CONFUSION),
    }
