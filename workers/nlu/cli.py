"""Command-line entry points of the local understanding model, wired into `concierge`:

    concierge train nlu [--taxonomy F] [--out DIR] [--if-missing] [--public-intents N]
                        [--public-sentiment N] [--augment N [--llm]] [--method lora]
    concierge bench nlu --train F --test F [--text-column C --label-column C]
    concierge bench nlu --dataset banking77|bitext|bitext20k [--method frozen,lora]
    concierge bench nlu --heldout [F] [--model DIR] [--method frozen,lora]
    concierge bench nlu --precisions [--model DIR] [--heldout-file F]
    concierge bench nlu --augmentation N [--llm]
    concierge eval nlu [--model DIR] [--heldout F] [--out DIR]

Each function takes the arguments after its subcommand words and returns an exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings
from core.turn.taxonomy import DEFAULT_PATH as DEFAULT_TAXONOMY
from core.turn.taxonomy import TaxonomyError, load_labelled
from workers.encoder import configure_torch
from workers.nlu.augment import Ask, Augmenter, llm_asker
from workers.nlu.bench import (
    DATASETS,
    bench_augmentation,
    bench_classifier,
    bench_dataset,
    bench_heldout,
    bench_precisions,
    compare_methods,
    read_labelled,
)
from workers.nlu.evaluate import CONFUSION, TABLE, evaluate_nlu
from workers.nlu.model import METHODS, NluConfig
from workers.nlu.training import is_current, train_nlu

HELDOUT = DEFAULT_TAXONOMY.parent / "heldout.jsonl"

log = logging.getLogger(__name__)


def _paraphraser(settings: Settings) -> Ask:
    from core.llm.client import LlmClient, LlmConfig

    return llm_asker(LlmClient(LlmConfig.from_settings(settings)))


def _method_options(parser: argparse.ArgumentParser, several: bool) -> None:
    parser.add_argument("--method", default=NluConfig.method,
                        help="how the encoder is used: frozen (as pretrained) or lora (LoRA "
                        "adapters fine-tuned on the training messages first)"
                        + ("; several, comma-separated, are trained and compared in one run"
                           if several else "") + " (default: %(default)s)")
    parser.add_argument("--lora-epochs", type=int, default=NluConfig.lora_epochs, metavar="N",
                        help="with lora: passes over the training messages (default: "
                        "%(default)s)")
    parser.add_argument("--lora-rank", type=int, default=NluConfig.lora_rank, metavar="R",
                        help="with lora: rank of each adapter (default: %(default)s)")


def _methods(parser: argparse.ArgumentParser, value: str) -> list[str]:
    methods = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        parser.error(f"--method: {', '.join(unknown) or 'none given'}; choose from "
                     f"{', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


def _config(
    parser: argparse.ArgumentParser, args: argparse.Namespace, method: str, calibrate: bool
) -> NluConfig:
    if args.lora_epochs < 1 or args.lora_rank < 1:
        parser.error("--lora-epochs and --lora-rank must be at least 1")
    return NluConfig(calibrate=calibrate, method=method, lora_epochs=args.lora_epochs,
                     lora_rank=args.lora_rank)


def _settings(settings: Settings | None) -> Settings:
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    configure_torch(settings.nlu_threads)
    return settings


def train_nlu_main(argv: Sequence[str], settings: Settings | None = None) -> int:
    """`concierge train nlu ...`: train the local model from the taxonomy file."""
    parser = argparse.ArgumentParser(prog="concierge train nlu", formatter_class=CommandHelp,
                                     description="Train the local understanding model.")
    parser.add_argument("--taxonomy", type=Path, metavar="FILE",
                        help="intents file (default: CONCIERGE_NLU_TAXONOMY, else the shipped "
                             "data/nlu/intents.yaml)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="model directory (default: CONCIERGE_NLU_DIR, else models/nlu)")
    parser.add_argument("--public-intents", type=int, default=0, metavar="N",
                        help="also use up to N Bitext messages per mapped intent")
    parser.add_argument("--public-sentiment", type=int, default=0, metavar="N",
                        help="also use up to N TweetEval messages for sentiment")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the model there is current (same code and taxonomy)")
    parser.add_argument("--augment", type=int, default=0, metavar="N",
                        help="also train on up to N paraphrases of each taxonomy example, made "
                        "by rules and kept apart from the held-out messages")
    parser.add_argument("--llm", action="store_true",
                        help="with --augment: ask the CONCIERGE_LLM_* model for paraphrases too")
    _method_options(parser, several=False)
    args = parser.parse_args(list(argv))
    methods = _methods(parser, args.method)
    if len(methods) > 1:
        parser.error("--method: one method trains a model")
    config = _config(parser, args, methods[0], calibrate=True)
    settings = _settings(settings)
    taxonomy = args.taxonomy or settings.nlu_taxonomy
    out = args.out or settings.nlu_path
    if args.if_missing and is_current(out, taxonomy):
        print(f"understanding model in {out} is current")
        return 0
    try:
        augmenter = None
        if args.augment > 0:
            heldout = [m.text for m in load_labelled(HELDOUT)] if HELDOUT.exists() else []
            augmenter = (Augmenter((), heldout, args.augment),
                         _paraphraser(settings) if args.llm else None)
        report = train_nlu(taxonomy, out, settings.data_dir, args.public_intents,
                           args.public_sentiment, config, augment=augmenter)
    except (TaxonomyError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trained on {report.intent_examples} intent and {report.sentiment_examples} "
          f"sentiment examples in {report.seconds:.1f}s -> {report.directory}")
    return 0


def eval_nlu_main(argv: Sequence[str], settings: Settings | None = None) -> int:
    """`concierge eval nlu ...`: the trained model on the held-out messages; last line JSON."""
    parser = argparse.ArgumentParser(
        prog="concierge eval nlu", formatter_class=CommandHelp,
        description="Evaluate the local understanding model on the held-out messages: the\n"
                    "accuracy line, precision / recall / F1 per intent, and a confusion matrix.\n"
                    f"Writes {TABLE} and {CONFUSION} into --out; the last line is JSON.")
    parser.add_argument("--model", type=Path, metavar="DIR",
                        help="trained model directory (default: CONCIERGE_NLU_DIR, else "
                             "models/nlu)")
    parser.add_argument("--heldout", type=Path, default=HELDOUT, metavar="FILE",
                        help="held-out messages, JSON lines of text, intent and sentiment")
    parser.add_argument("--out", type=Path, default=Path("reports/nlu"), metavar="DIR",
                        help="folder for the per-intent table (CSV) and the confusion matrix "
                             "(PNG)")
    args = parser.parse_args(list(argv))
    settings = _settings(settings)
    model_dir = args.model or settings.nlu_path
    if not is_current(model_dir, settings.nlu_taxonomy):
        print(f"note: {model_dir} was not built by this code from {settings.nlu_taxonomy} "
              "(`concierge train nlu` rebuilds it)", flush=True)
    try:
        figures = evaluate_nlu(model_dir, args.heldout, args.out,
                               precision=settings.encoder_precision)
    except (FileNotFoundError, TaxonomyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures))
    return 0


def bench_nlu_main(argv: Sequence[str], settings: Settings | None = None) -> int:
    """`concierge bench nlu ...`: accuracy, macro-F1, training time, latency; last line JSON."""
    parser = argparse.ArgumentParser(prog="concierge bench nlu",
                                     description="Benchmark the local understanding method.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=Path,
                        help="CSV/TSV/JSONL with text and label (default: none; with --test)")
    source.add_argument("--dataset", choices=DATASETS,
                        help="a public data set under settings' data_dir; bitext20k is the size "
                        "of CLINC150 (default: none)")
    source.add_argument("--heldout", type=Path, nargs="?", const=HELDOUT,
                        help="the default taxonomy's held-out messages, JSONL (default when "
                        f"given without a file: {HELDOUT.name} beside the taxonomy)")
    source.add_argument("--augmentation", type=int, metavar="N",
                        help="the taxonomy model trained as it is and with N paraphrases of "
                        "each example (rules; the configured LLM as well with --llm), both "
                        "on the held-out messages")
    source.add_argument("--precisions", action="store_true",
                        help="the float and int8 encoders side by side: intent accuracy and "
                        "latency per message on the held-out messages (the trained model: "
                        "--model, else CONCIERGE_NLU_DIR) and on BANKING77 (trained here)")
    parser.add_argument("--test", type=Path, help="test file, with --train (default: none)")
    parser.add_argument("--text-column", default="text",
                        help="text column of --train/--test (default: %(default)s)")
    parser.add_argument("--label-column", default="label",
                        help="label column of --train/--test (default: %(default)s)")
    parser.add_argument("--model", type=Path, help="with --heldout: a trained model directory "
                        "to evaluate (default: train a fresh one from the taxonomy); with "
                        "--precisions: the model to compare (default: CONCIERGE_NLU_DIR)")
    parser.add_argument("--heldout-file", type=Path, default=HELDOUT, metavar="FILE",
                        help="with --precisions: the held-out messages (default: "
                        f"{HELDOUT.name} beside the taxonomy)")
    parser.add_argument("--threshold", type=float,
                        help="cascade threshold (default: settings' cascade_threshold, "
                        "CONCIERGE_CASCADE_THRESHOLD)")
    parser.add_argument("--llm", action="store_true",
                        help="with --augmentation: ask the CONCIERGE_LLM_* model for "
                        "paraphrases too (default: rules only)")
    _method_options(parser, several=True)
    args = parser.parse_args(list(argv))
    methods = _methods(parser, args.method)
    if len(methods) > 1 and args.train is None and args.dataset is None and args.heldout is None:
        parser.error("several methods are compared with --train, --dataset or --heldout")
    if args.heldout is not None and args.model is not None and args.method != NluConfig.method:
        parser.error("--model is evaluated as trained; --method is for training a new one")
    config = _config(parser, args, methods[0], calibrate=args.heldout is not None)
    settings = _settings(settings)

    def say(line: str) -> None:
        print(line, flush=True)

    if args.train is not None:
        if args.test is None:
            parser.error("--train needs --test")
        train = read_labelled(args.train, args.text_column, args.label_column)
        test = read_labelled(args.test, args.text_column, args.label_column)
        figures = bench_classifier(args.train.stem, train, test, config, say, methods)
    elif args.dataset is not None:
        figures = bench_dataset(args.dataset, settings.data_dir, config, say, methods)
    elif args.augmentation is not None:
        figures = bench_augmentation(settings.nlu_taxonomy, args.heldout_file, args.augmentation,
                                     _paraphraser(settings) if args.llm else None, config, say)
    elif args.precisions:
        try:
            figures = bench_precisions(args.model or settings.nlu_path, args.heldout_file,
                                       settings.data_dir, say)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        threshold = args.threshold if args.threshold is not None else settings.cascade_threshold
        def heldout(method: str) -> dict[str, Any]:
            return bench_heldout(settings.nlu_taxonomy, args.heldout, args.model, threshold,
                                 replace(config, method=method), say, settings.encoder_precision)

        if args.model is not None or len(methods) == 1:
            figures = heldout(methods[0])
        else:
            # The model serves both tasks: the better method is right more often on both.
            results, best = compare_methods(
                methods, heldout,
                lambda f: f["intent_accuracy"] + f["sentiment_accuracy"],
                ("intent_accuracy", "sentiment_accuracy", "train_s", "latency_median_ms"), say)
            figures = {"bench": "nlu", "dataset": "heldout", "methods": results, "best": best}
    print(json.dumps(figures))
    return 0
