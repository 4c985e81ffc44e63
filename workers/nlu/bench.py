"""Benchmarks of the local method: any labelled text file, the public sets, the held-out set,
and the float and int8 encoders side by side.

Prints figures as it goes and one final JSON line, so runs can be compared and collected.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, f1_score

from core.infra.percentiles import median, percentile
from core.state.store import ConversationState
from core.turn.taxonomy import load_labelled, load_taxonomy
from workers.minilm import Precision
from workers.nlu.augment import Ask, Augmenter
from workers.nlu.evaluate import answer_heldout
from workers.nlu.model import WEIGHTS, NluConfig, NluModel
from workers.nlu.training import train_model, training_sets
from workers.nlu.understander import LocalUnderstander

BANKING77 = ("banking77/train.csv", "banking77/test.csv", "text", "category")
BITEXT = ("bitext/Bitext_Sample_Customer_Support_Training_Dataset_2023-08-18.csv",
          "instruction", "intent")
BITEXT_20K = ("bitext_20k_utterances/TrainingdatasetBitextsample.csv", "utterance", "intent")
LATENCY_MESSAGES = 300


@dataclass(frozen=True)
class Labelled:
    texts: list[str]
    labels: list[str]


def read_labelled(path: Path, text_column: str, label_column: str) -> Labelled:
    """Text and label columns of a CSV, TSV or JSON-lines file."""
    texts: list[str] = []
    labels: list[str] = []
    if path.suffix in {".jsonl", ".json"}:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.append(str(row[text_column]))
                labels.append(str(row[label_column]))
        return Labelled(texts, labels)
    delimiter = "\t" if path.suffix in {".tsv", ".tab"} else ","
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        missing = {text_column, label_column} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} has no column(s) {sorted(missing)}; "
                             f"columns are {reader.fieldnames}")
        for row in reader:
            texts.append(row[text_column])
            labels.append(row[label_column])
    return Labelled(texts, labels)


def split(data: Labelled, test_share: float = 0.2, seed: int = 0) -> tuple[Labelled, Labelled]:
    """A stratified split: the same share of every label goes to the test side."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(data.texts, data.labels, strict=True):
        by_label[label].append(text)
    rng = random.Random(seed)
    train, test = Labelled([], []), Labelled([], [])
    for label in sorted(by_label):
        texts = by_label[label]
        rng.shuffle(texts)
        cut = max(1, round(len(texts) * test_share))
        for side, chunk in ((test, texts[:cut]), (train, texts[cut:])):
            side.texts.extend(chunk)
            side.labels.extend([label] * len(chunk))
    return train, test


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p99_ms: float
    cpu_median_ms: float  # CPU time of this process: what one message costs on a free core


def latency(understander: LocalUnderstander, texts: Sequence[str]) -> Latency:
    """Wall-clock median and p99, and median CPU time, of understanding one message at a time.
    On a shared machine the wall clock includes waiting for a core; the CPU time does not."""
    state = ConversationState(conversation_id="bench")
    understander.understand(texts[0], state)  # first call pays one-off costs
    wall, cpu = [], []
    for text in texts[:LATENCY_MESSAGES]:
        started, started_cpu = time.perf_counter(), time.process_time()
        understander.understand(text, state)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return Latency(median(wall), percentile(wall, 99), median(cpu))


Say = Callable[[str], None]


def fresh_load_s(directory: Path) -> float:
    """Seconds from a new interpreter to a loaded local model, imports included: what a
    process starting up pays before it can understand the first message."""
    code = (
        "import time; started = time.perf_counter()\n"
        "from pathlib import Path\n"
        "from workers.nlu.understander import LocalUnderstander\n"
        f"LocalUnderstander.load(Path({str(directory)!r}))\n"
        "print(time.perf_counter() - started)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    return float(done.stdout.strip().splitlines()[-1])


def bench_classifier(
    name: str, train: Labelled, test: Labelled, config: NluConfig, say: Say = print,
    methods: Sequence[str] = ("frozen",),
) -> dict[str, object]:
    """Train the local model on `train` with each of `methods` ("frozen", "lora") in turn,
    evaluate each on `test`; returns the figures side by side and the best method."""
    say(f"{name}: {len(train.texts)} train / {len(test.texts)} test, "
        f"{len(set(train.labels))} labels")
    results, best = compare_methods(
        methods, lambda method: _bench_method(train, test, replace(config, method=method), say),
        lambda figures: figures["accuracy"], ("accuracy", "macro_f1", "train_s",
                                              "latency_median_ms"), say)
    return {
        "bench": "nlu", "dataset": name, "train": len(train.texts), "test": len(test.texts),
        "labels": len(set(train.labels)), "methods": results, "best": best,
    }


Figures = dict[str, Any]


def compare_methods(
    methods: Sequence[str],
    run: Callable[[str], Figures],
    score: Callable[[Figures], float],
    columns: Sequence[str],
    say: Say,
) -> tuple[dict[str, Figures], str]:
    """`run` each method in turn; their figures by method, and the one `score` puts first.
    With several, a table of `columns` side by side."""
    results: dict[str, Figures] = {}
    for method in methods:
        say(f"[{method}]")
        results[method] = run(method)
    best = max(results, key=lambda method: score(results[method]))
    if len(results) > 1:
        say("method    " + "  ".join(f"{column:>17}" for column in columns))
        for method, figures in results.items():
            say(f"{method:<9} " + "  ".join(f"{figures[column]!s:>17}" for column in columns))
        say(f"better: {best}")
    return results, best


def _bench_method(train: Labelled, test: Labelled, config: NluConfig, say: Say) -> Figures:
    started = time.perf_counter()
    model = train_model(list(zip(train.texts, train.labels, strict=True)), (), config, say)
    train_s = time.perf_counter() - started
    say(f"trained in {train_s:.1f}s (fine-tuning {model.meta['tune_s']}s, encoding "
        f"{model.meta['encode_s']}s)")
    predicted = [intent.label for intent, _ in model.predict(test.texts)]
    accuracy = accuracy_score(test.labels, predicted)
    macro_f1 = f1_score(test.labels, predicted, average="macro")
    timing = latency(LocalUnderstander(model), test.texts)
    say(f"accuracy {accuracy:.4f}  macro-F1 {macro_f1:.4f}")
    say(f"latency per message: median {timing.median_ms:.1f} ms, p99 {timing.p99_ms:.1f} ms "
        f"(CPU time median {timing.cpu_median_ms:.1f} ms)")
    return {
        "accuracy": round(accuracy, 4), "macro_f1": round(macro_f1, 4),
        "train_s": round(train_s, 1), "tune_s": model.meta["tune_s"],
        "latency_median_ms": round(timing.median_ms, 2), "latency_p99_ms": round(timing.p99_ms, 2),
        "cpu_median_ms": round(timing.cpu_median_ms, 2),
        **({"lora_rank": config.lora_rank, "lora_epochs": config.lora_epochs}
           if config.method == "lora" else {}),
    }


DATASETS = ("banking77", "bitext", "bitext20k")


def bench_dataset(
    name: str, data_dir: Path, config: NluConfig, say: Say = print,
    methods: Sequence[str] = ("frozen",),
) -> dict[str, object]:
    """A public set: BANKING77's own split, or a stratified 80/20 split of a Bitext sample
    ("bitext20k": 21,534 messages, the size of CLINC150, 27 intents)."""
    if name == "banking77":
        train_file, test_file, text, label = BANKING77
        train = read_labelled(data_dir / train_file, text, label)
        test = read_labelled(data_dir / test_file, text, label)
    elif name == "bitext":
        file, text, label = BITEXT
        train, test = split(read_labelled(data_dir / file, text, label))
    elif name == "bitext20k":
        file, text, label = BITEXT_20K
        train, test = split(read_labelled(data_dir / file, text, label))
    else:
        raise ValueError(f"unknown dataset {name!r}: {', '.join(DATASETS)}")
    return bench_classifier(name, train, test, config, say, methods)


def bench_heldout(
    taxonomy_path: Path,
    heldout_path: Path,
    model_dir: Path | None,
    threshold: float,
    config: NluConfig,
    say: Say = print,
    precision: Precision = "float",
) -> dict[str, object]:
    """The default taxonomy model on the held-out realistic messages, its encoder at
    `precision`: accuracy, load time, latency, and how many LLM calls a cascade at `threshold`
    would save."""
    train_s: float | None = None  # None: the model was given, nothing was trained
    with tempfile.TemporaryDirectory() as scratch:
        directory = model_dir or Path(scratch)
        if model_dir is None or not (model_dir / WEIGHTS).exists():
            started = time.perf_counter()
            intents, sentiments = training_sets(load_taxonomy(taxonomy_path))
            train_model(intents, sentiments, config, say).save(directory)
            train_s = time.perf_counter() - started
        load_started = time.perf_counter()
        understander = LocalUnderstander.load(directory, precision=precision)
        load_s = time.perf_counter() - load_started
        fresh_s = fresh_load_s(directory)
    answers = answer_heldout(understander, heldout_path)
    held, results = answers.messages, answers.results
    intent_ok = answers.intent_hits()
    confident = [r.confidence >= threshold for r in results]
    kept_ok = [ok for ok, sure in zip(intent_ok, confident, strict=True) if sure]
    timing = latency(understander, [row.text for row in held])
    figures: dict[str, object] = {
        "bench": "nlu", "dataset": "heldout", "method": config.method,
        "encoder_precision": precision,
        **answers.accuracy(),
        "train_s": round(train_s, 1) if train_s is not None else None,
        "load_s": round(load_s, 2),
        "load_fresh_process_s": round(fresh_s, 2),
        "latency_median_ms": round(timing.median_ms, 2),
        "latency_p99_ms": round(timing.p99_ms, 2),
        "cpu_median_ms": round(timing.cpu_median_ms, 2),
        "cascade_threshold": threshold,
        "cascade_llm_calls_saved": sum(confident),
        "cascade_saved_share": round(sum(confident) / len(held), 4),
        "local_accuracy_when_confident": round(sum(kept_ok) / max(1, len(kept_ok)), 4),
    }
    trained = f"trained in {train_s:.1f}s" if train_s is not None else f"{model_dir}, not trained"
    say(f"{answers.accuracy_line()} ({trained})")
    say(f"model load {load_s:.2f}s ({fresh_s:.2f}s in a fresh process, imports included), "
        f"latency median {timing.median_ms:.1f} ms, p99 {timing.p99_ms:.1f} ms "
        f"(CPU time median {timing.cpu_median_ms:.1f} ms)")
    say(f"cascade at {threshold}: local answers {sum(confident)}/{len(held)} "
        f"(LLM calls saved), accuracy on those {figures['local_accuracy_when_confident']:.3f}")
    for result, row, ok in zip(results, held, intent_ok, strict=True):
        if not ok:
            say(f"  miss: {row.text!r}: {row.intent} -> {result.intent.value} "
                f"({result.confidence:.2f})")
    return figures


PRECISIONS: tuple[Precision, ...] = ("float", "int8")


def paired_latency(
    understanders: dict[str, LocalUnderstander], texts: Sequence[str], rounds: int = 2
) -> dict[str, Latency]:
    """`latency` of several understanders over the same messages, in turns: each takes all
    the messages in a row (as a process holding one model does, its weights kept in the
    CPU's caches), for `rounds` rounds in alternating order, so a busy stretch of a shared
    machine falls on all of them alike."""
    state = ConversationState(conversation_id="bench")
    wall: dict[str, list[float]] = {name: [] for name in understanders}
    cpu: dict[str, list[float]] = {name: [] for name in understanders}
    names = list(understanders)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            understander = understanders[name]
            understander.understand(texts[0], state)  # first call pays one-off costs
            for text in texts[:LATENCY_MESSAGES]:
                started, started_cpu = time.perf_counter(), time.process_time()
                understander.understand(text, state)
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - started_cpu) * 1000)
    return {name: Latency(median(wall[name]), percentile(wall[name], 99), median(cpu[name]))
            for name in understanders}


def _precision_figures(
    model: NluModel, accuracy: Callable[[NluModel], float], texts: Sequence[str], say: Say
) -> dict[str, dict[str, float]]:
    """Accuracy and latency per message of `model` with each encoder precision."""
    models = {precision: replace(model, precision=precision) for precision in PRECISIONS}
    timing = paired_latency({p: LocalUnderstander(m) for p, m in models.items()}, texts)
    figures: dict[str, dict[str, float]] = {}
    for precision, variant in models.items():
        figures[precision] = {
            "intent_accuracy": round(accuracy(variant), 4),
            "latency_median_ms": round(timing[precision].median_ms, 2),
            "latency_p99_ms": round(timing[precision].p99_ms, 2),
            "cpu_median_ms": round(timing[precision].cpu_median_ms, 2),
        }
        f = figures[precision]
        say(f"  {precision:<5}  intent accuracy {f['intent_accuracy']:.4f}  latency median "
            f"{f['latency_median_ms']:.2f} ms, p99 {f['latency_p99_ms']:.2f} ms (CPU "
            f"{f['cpu_median_ms']:.2f} ms)")
    cost = (figures["float"]["intent_accuracy"] - figures["int8"]["intent_accuracy"]) * 100
    speedup = figures["float"]["latency_median_ms"] / figures["int8"]["latency_median_ms"]
    say(f"  int8: accuracy {-cost:+.2f} points, median latency x{1 / speedup:.2f} "
        f"({speedup:.2f} times as fast)")
    return figures


def bench_precisions(
    model_dir: Path, heldout_path: Path, data_dir: Path, say: Say = print
) -> dict[str, object]:
    """The float and the int8 encoder side by side, in one process: intent accuracy and
    latency per message, on the held-out messages (the trained taxonomy model in `model_dir`)
    and on BANKING77's test set (a model trained on its training set with float features, as
    every model is trained). Each message goes through the encoder alone, as a turn's does."""
    say(f"held-out messages, model {model_dir}:")
    model = NluModel.load(model_dir)
    held = load_labelled(heldout_path)
    say(f"  {len(held)} messages")

    def heldout_accuracy(variant: NluModel) -> float:
        return float(answer_heldout(LocalUnderstander(variant), heldout_path).accuracy()[
            "intent_accuracy"])

    figures: dict[str, object] = {
        "bench": "nlu-precision",
        "heldout": {"messages": len(held), **_precision_figures(
            model, heldout_accuracy, [m.text for m in held], say)},
    }
    train_file, test_file, text, label = BANKING77
    if not (data_dir / test_file).exists():
        say(f"BANKING77: not found under {data_dir} (CONCIERGE_DATA_DIR): skipped")
        figures["banking77"] = None
        return figures
    train = read_labelled(data_dir / train_file, text, label)
    test = read_labelled(data_dir / test_file, text, label)
    say(f"BANKING77: {len(train.texts)} train / {len(test.texts)} test, "
        f"{len(set(train.labels))} labels")
    started = time.perf_counter()
    banking = train_model(list(zip(train.texts, train.labels, strict=True)), (),
                          NluConfig(calibrate=False))
    say(f"  trained in {time.perf_counter() - started:.1f}s (float features)")

    def banking_accuracy(variant: NluModel) -> float:
        predicted = [variant.predict([text])[0][0].label for text in test.texts]
        return float(accuracy_score(test.labels, predicted))

    figures["banking77"] = {"test": len(test.texts),
                            **_precision_figures(banking, banking_accuracy, test.texts, say)}
    return figures


def bench_augmentation(
    taxonomy_path: Path,
    heldout_path: Path,
    per_example: int,
    ask: Ask | None,
    config: NluConfig,
    say: Say = print,
) -> dict[str, object]:
    """The taxonomy model trained as it is and with `per_example` paraphrases of each example
    (rules, or the LLM `ask` with the rules behind it), both on the held-out messages."""
    taxonomy = load_taxonomy(taxonomy_path)
    intents, sentiments = training_sets(taxonomy)
    heldout = [message.text for message in load_labelled(heldout_path)]
    augmenter = Augmenter(intents, heldout, per_example)
    started = time.perf_counter()
    added = augmenter.augment(ask)
    augment_s = time.perf_counter() - started
    runs: dict[str, dict[str, object]] = {}
    for name, examples in (("taxonomy", intents), ("augmented", intents + added)):
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            train_model(examples, sentiments, config).save(Path(scratch))
            train_s = time.perf_counter() - started
            answers = answer_heldout(LocalUnderstander.load(Path(scratch)), heldout_path)
        runs[name] = {"examples": len(examples), **answers.accuracy(),
                      "train_s": round(train_s, 1)}
        say(f"{name:<10} {len(examples):>5} examples: {answers.accuracy_line()} "
            f"(trained in {train_s:.1f}s)")
    say(f"paraphrases kept: {len(added)} from {'the LLM and rules' if ask else 'rules'} in "
        f"{augment_s:.1f}s; refused: {augmenter.rejected}")
    return {"bench": "nlu", "dataset": "heldout", "augmentation": per_example,
            "source": "llm+rules" if ask else "rules", "added": len(added),
            "refused": augmenter.rejected, **runs}
