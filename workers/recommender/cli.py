"""Command-line entry points for the recommender: train, eval, bench, and the Celery worker.

`bots/cli.py` wires them as `concierge train recommender ...`, `concierge eval recommender ...`,
`concierge bench recommender ...` and `concierge worker ...`; each takes the arguments after
those words.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from core.infra.logs import configure
from core.infra.settings import Settings
from workers.recommender.data import InteractionData, load_beauty, load_demo, load_files


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["amazon-beauty", "demo"], default=None)
    parser.add_argument("--interactions", type=Path, help="CSV/TSV user_id,item_id,timestamp")
    parser.add_argument("--items", type=Path, help="items CSV/JSONL item_id,title,...")


def _load_data(args: argparse.Namespace, settings: Settings) -> InteractionData:
    if args.dataset == "amazon-beauty":
        return load_beauty(settings.data_dir / "amazon_beauty")
    if args.dataset == "demo":
        return load_demo(settings.demo_dir)
    if args.interactions is None or args.items is None:
        raise SystemExit("give --dataset amazon-beauty|demo, or both --interactions and --items")
    return load_files(args.interactions, args.items)


def train_recommender_main(
    argv: Sequence[str] | None = None, settings: Settings | None = None
) -> int:
    """`concierge train recommender`: train and save a model (config inside the checkpoint)."""
    from workers.encoder import configure_torch
    from workers.recommender.model import RecommenderConfig
    from workers.recommender.train import TrainConfig, train

    parser = argparse.ArgumentParser(prog="concierge train recommender")
    _data_arguments(parser)
    parser.add_argument("--out", type=Path, help="model folder (default: recommender_dir)")
    parser.add_argument("--id-only", action="store_true", help="the ID-only SASRec baseline")
    parser.add_argument(
        "--cold-fraction",
        type=float,
        default=0.0,
        help="share of items held out of training (cold-start evaluation)",
    )
    parser.add_argument("--budget-min", type=float, default=25.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="default 0.3, or 0.5 for --id-only (SASRec's setting)",
    )
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--request-prob", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    threads = args.threads or settings.worker_threads
    configure_torch(threads)
    data = _load_data(args, settings)
    out = args.out or settings.recommender_dir
    model_config = RecommenderConfig(
        n_items=data.n_items,
        dim=args.dim,
        layers=args.layers,
        heads=args.heads,
        max_len=args.max_len,
        dropout=args.dropout if args.dropout is not None else (0.5 if args.id_only else 0.3),
        use_text=not args.id_only,
        use_request=not args.id_only,
        id_dropout=0.0 if args.id_only else 0.1,
    )
    train_config = TrainConfig(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        time_budget_s=args.budget_min * 60,
        seed=args.seed,
        request_prob=0.0 if args.id_only else args.request_prob,
        cold_fraction=args.cold_fraction,
        threads=threads,
        progress=not args.quiet,
    )
    result = train(
        data, model_config, train_config, out=out, cache_dir=settings.models_dir / "cache"
    )
    best = max(result.curve, key=lambda point: point["val_ndcg@10"]) if result.curve else {}
    summary = {
        "out": str(out),
        "dataset": data.name,
        "items": data.n_items,
        "epochs": len(result.curve),
        "best_epoch": result.best_epoch,
        "val_ndcg@10": round(best.get("val_ndcg@10", 0.0), 4),
        "val_hr@10": round(best.get("val_hr@10", 0.0), 4),
        "train_seconds": round(result.seconds, 1),
    }
    print(f"saved {out} after {len(result.curve)} epochs in {result.seconds:.0f} s")
    print(json.dumps(summary))
    return 0


def eval_recommender_main(
    argv: Sequence[str] | None = None, settings: Settings | None = None
) -> int:
    """`concierge eval recommender`: leave-one-out full ranking beside the baselines."""
    from workers.encoder import configure_torch
    from workers.recommender.evaluate import evaluate_command

    parser = argparse.ArgumentParser(prog="concierge eval recommender")
    _data_arguments(parser)
    parser.add_argument("--model", type=Path, required=True, help="the model folder")
    parser.add_argument("--baseline", type=Path, help="ID-only SASRec model folder")
    parser.add_argument("--cold-model", type=Path, help="model trained with --cold-fraction")
    parser.add_argument("--report", type=Path, default=Path("reports/recommender.html"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    configure_torch(args.threads or settings.worker_threads)
    if args.dataset is None and args.interactions is None:
        args.dataset = "amazon-beauty"
    data = _load_data(args, settings)
    summary = evaluate_command(data, args.model, args.baseline, args.cold_model, args.report)
    print(json.dumps(summary))
    return 0


def bench_recommender_main(
    argv: Sequence[str] | None = None, settings: Settings | None = None
) -> int:
    """`concierge bench recommender`: scoring latency, Celery round trip, throughput, RSS."""
    from workers.recommender.benchmark import benchmark_command

    parser = argparse.ArgumentParser(prog="concierge bench recommender")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument(
        "--requests", type=int, default=300, help="requests timed (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="clients sending at once in the throughput test (default: %(default)s)",
    )
    parser.add_argument(
        "--no-celery",
        action="store_true",
        help="in-process figures only (default: also start a worker and time Celery)",
    )
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    summary = benchmark_command(
        settings, args.model, args.requests, args.concurrency, celery=not args.no_celery
    )
    print(json.dumps(summary))
    return 0


def worker_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge worker`: a Celery worker with the project's settings (extra args pass on)."""
    from workers.app import build_app

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    app = build_app(settings)
    args = list(argv or [])
    if not any(arg.startswith(("--concurrency", "-c")) for arg in args):
        args.append(f"--concurrency={settings.worker_concurrency}")
    app.worker_main(["worker", f"--loglevel={settings.log_level}", *args])
    return 0
