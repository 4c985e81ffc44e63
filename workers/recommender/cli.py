"""Command-line entry points for the recommender: train, eval, bench, and the Celery worker.

`bots/cli.py` wires them as `concierge train recommender ...`, `concierge eval recommender ...`,
`concierge bench recommender ...` and `concierge worker ...`; each takes the arguments after
those words.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings
from workers.recommender.data import (
    DATASETS,
    InteractionData,
    load_dataset,
    load_files,
    load_store,
)

if TYPE_CHECKING:
    from workers.recommender.distributed import TrainingGroup


def _data_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--from-store", action="store_true",
                        help="the store database (CONCIERGE_STORE_URL): its orders and recorded "
                             "interactions, its catalog as the items")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="demo (the demo store's files) or amazon-beauty (under "
                             f"CONCIERGE_DATA_DIR); or your own files below (default: {default})")
    parser.add_argument("--interactions", type=Path, metavar="FILE",
                        help="your interactions: CSV/TSV user_id,item_id,timestamp")
    parser.add_argument("--items", type=Path, metavar="FILE",
                        help="your items: CSV/JSONL item_id,title,...")


def _load_data(args: argparse.Namespace, settings: Settings) -> InteractionData:
    if args.from_store:
        return store_data(settings)
    if args.dataset is not None:
        return load_dataset(args.dataset, settings.demo_dir, settings.data_dir)
    if args.interactions is None or args.items is None:
        raise SystemExit("give --from-store, --dataset amazon-beauty|demo, or both --interactions "
                         "and --items")
    return load_files(args.interactions, args.items)


def store_data(settings: Settings) -> InteractionData:
    """The store database's training data; StoreNotReady, saying what to run, when it has
    no schema yet."""
    from core.shopdb.database import ShopDatabase

    database = ShopDatabase(settings.store_url.get_secret_value())
    try:
        database.check_ready()
        return load_store(database)
    finally:
        database.close()


def train_recommender_main(
    argv: Sequence[str] | None = None,
    settings: Settings | None = None,
    group: TrainingGroup | None = None,
) -> int:
    """`concierge train recommender`: train and save a model (config inside the checkpoint).
    With --nproc or --nnodes above 1 it starts torchrun, whose every process runs this again
    as one rank of `group` (`workers/recommender/distributed.py`)."""
    from workers.encoder import configure_torch
    from workers.recommender.distributed import Launch, launch
    from workers.recommender.model import RecommenderConfig
    from workers.recommender.train import TrainConfig, train

    parser = argparse.ArgumentParser(
        prog="concierge train recommender", formatter_class=CommandHelp,
        description="Train the transformer recommender and save it, its config and training\n"
                    "facts in one checkpoint. `concierge train` does this for the settings'\n"
                    "model when it is missing or out of date.")
    _data_arguments(parser, "none: give a dataset or both files")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="model folder (default: CONCIERGE_RECOMMENDER_DIR, else "
                             "models/recommender-demo)")
    parser.add_argument("--id-only", action="store_true", help="the ID-only SASRec baseline")
    parser.add_argument(
        "--cold-fraction",
        type=float,
        default=0.0,
        help="share of items held out of training (cold-start evaluation)",
    )
    parser.add_argument("--budget-min", type=float, default=25.0,
                        help="training time budget, in minutes")
    parser.add_argument("--epochs", type=int, default=200, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=5,
                        help="stop after this many epochs without a better validation score")
    parser.add_argument("--dim", type=int, default=64, help="width of the item and state vectors")
    parser.add_argument("--layers", type=int, default=2, help="transformer layers")
    parser.add_argument("--heads", type=int, default=2, help="attention heads per layer")
    parser.add_argument("--max-len", type=int, default=50,
                        help="history items the model reads (the most recent)")
    parser.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="default 0.3, or 0.5 for --id-only (SASRec's setting)",
    )
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate (AdamW)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="sequences per step, over all processes (each of N takes 1/N)")
    parser.add_argument("--request-prob", type=float, default=0.2,
                        help="share of training positions that get a request text")
    parser.add_argument("--seed", type=int, default=7, help="random seed (split and training)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads, per process (default: CONCIERGE_WORKER_THREADS)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    ranks = parser.add_argument_group(
        "several processes",
        "DistributedDataParallel over gloo, started by torchrun; the same checkpoint.")
    ranks.add_argument("--nproc", type=int, default=1, metavar="N",
                       help="training processes on this machine")
    ranks.add_argument("--nnodes", type=int, default=1, metavar="M",
                       help="machines training together (run the command on each)")
    ranks.add_argument("--node-rank", type=int, default=0, metavar="R",
                       help="this machine's number, 0 to M - 1 (0 holds the endpoint)")
    ranks.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                       help="where machine 0 listens for the others (needed with --nnodes)")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    threads = args.threads or settings.worker_threads
    if group is None and (args.nproc > 1 or args.nnodes > 1):
        if args.nnodes > 1 and not args.rdzv_endpoint:
            parser.error("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (machine 0's)")
        plan = Launch(args.nproc, args.nnodes, args.node_rank, args.rdzv_endpoint)
        return launch(plan, list(argv if argv is not None else sys.argv[1:]), threads)
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
        data, model_config, train_config, out=out, cache_dir=settings.models_dir / "cache",
        group=group,
    )
    if group is not None and not group.main:
        return 0  # rank 0 saved the model and says so
    best = max(result.curve, key=lambda point: point["val_ndcg@10"]) if result.curve else {}
    summary = {
        "out": str(out),
        "dataset": data.name,
        "items": data.n_items,
        "epochs": len(result.curve),
        "best_epoch": result.best_epoch,
        "val_ndcg@10": round(best.get("val_ndcg@10", 0.0), 4),
        "val_hr@10": round(best.get("val_hr@10", 0.0), 4),
        "train_seconds": round(result.seconds, 3),  # a tiny store trains in well under 0.1 s
        # an epoch's training and validation, on average
        "epoch_seconds": round(result.seconds / max(1, len(result.curve)), 3),
        "world_size": result.world_size,
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

    parser = argparse.ArgumentParser(
        prog="concierge eval recommender", formatter_class=CommandHelp,
        description="Leave-one-out full ranking (HR@10, NDCG@10) of a model beside a\n"
                    "popularity baseline and, if given, the ID-only SASRec baseline; writes an\n"
                    "HTML report with plots. The last line is JSON.")
    _data_arguments(parser, "amazon-beauty")
    parser.add_argument("--model", type=Path, required=True, metavar="DIR",
                        help="the model folder to evaluate (required)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="an ID-only SASRec model folder (train recommender --id-only) to "
                             "compare with; default: none")
    parser.add_argument("--cold-model", type=Path, metavar="DIR",
                        help="a model trained with --cold-fraction, for the cold-start figures; "
                             "default: none")
    parser.add_argument("--report", type=Path, default=Path("reports/recommender.html"),
                        metavar="FILE", help="the HTML report")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: CONCIERGE_WORKER_THREADS)")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    configure_torch(args.threads or settings.worker_threads)
    if args.dataset is None and args.interactions is None and not args.from_store:
        args.dataset = "amazon-beauty"
    data = _load_data(args, settings)
    summary = evaluate_command(data, args.model, args.baseline, args.cold_model, args.report)
    print(json.dumps(summary))
    return 0


def eval_policy_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge eval policy`: off-policy estimates of a ranking policy from logged slates."""
    from core.shopdb.learning import LearningStore, read_slates
    from workers.recommender.bandit import STATE, Policy, Posterior
    from workers.recommender.offpolicy import Logged, estimate

    parser = argparse.ArgumentParser(
        prog="concierge eval policy", formatter_class=CommandHelp,
        description="Estimate a candidate ranking policy's clicks and purchases per slate from\n"
                    "slates another policy showed (IPS, SNIPS, doubly robust, with bootstrap\n"
                    "95% intervals), before any customer sees it. The last line is JSON.")
    parser.add_argument("--logs", required=True, metavar="FILE|store",
                        help="slates as JSON lines (concierge simulate --slates-out), or 'store' "
                             "for those logged in the store database (required)")
    parser.add_argument("--candidate", default="store", metavar="FILE|store|model",
                        help="the policy to judge: a bandit state file (simulate --save-bandit), "
                             "'store' for the bandit state serving now, or 'model' for the "
                             "recommender's own order")
    parser.add_argument("--exploration", type=float, default=None,
                        help="the candidate's exploration, 0-1 (default: "
                             "CONCIERGE_BANDIT_EXPLORATION)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="posterior draws and resamples")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    exploration = settings.bandit_exploration if args.exploration is None else args.exploration
    if not 0.0 <= exploration <= 1.0:
        parser.error(f"--exploration must be between 0 and 1, not {exploration}")
    if args.resamples < 10:
        parser.error("--resamples must be at least 10")
    store = None
    if "store" in (args.logs, args.candidate):
        from core.shopdb.database import ShopDatabase

        database = ShopDatabase(settings.store_url.get_secret_value())
        database.check_ready()
        store = LearningStore(database)
    try:
        slates = list(store.slates()) if store and args.logs == "store" else read_slates(
            Path(args.logs))
        if args.candidate == "model":
            posterior = Posterior.prior()
        elif store is not None and args.candidate == "store":
            raw = store.bandit_state(STATE)
            posterior = Posterior.from_json(raw) if raw else Posterior.prior()
        else:
            posterior = Posterior.from_json(json.loads(Path(args.candidate).read_text()))
        logged = Logged.of(slates)
    except (OSError, ValueError, KeyError) as error:
        print(f"concierge eval policy: {error}", file=sys.stderr)
        return 2
    figures = estimate(logged, Policy(posterior, exploration), args.seed, args.resamples)
    print(f"{len(slates)} logged slates; candidate policy: bandit state version "
          f"{posterior.version} ({posterior.observations} observations), exploration "
          f"{exploration:g}")
    for reward, found in figures.items():
        print(f"{reward} per slate: " + ", ".join(
            f"{name} {e.value:.4f} [{e.low:.4f}, {e.high:.4f}]" for name, e in found.items()))
    print(json.dumps({"eval_policy": {
        "slates": len(slates), "exploration": exploration, "version": posterior.version,
        **{reward: {name: e.as_json() for name, e in found.items()}
           for reward, found in figures.items()},
    }}))
    return 0


def model_list_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge model list`: the recommender's versions, the served one marked."""
    from core.infra.health import model_version
    from workers.recommender.versions import Registry

    parser = argparse.ArgumentParser(
        prog="concierge model list", formatter_class=CommandHelp,
        description="The recommender versions kept beside CONCIERGE_RECOMMENDER_DIR, the served\n"
                    "one marked with *, and the latest entries of the promotion history.")
    parser.parse_args(argv)
    settings = settings or Settings()
    registry = Registry(settings.recommender_dir)
    served = registry.served()
    print(f"served: {settings.recommender_dir} -> {served or '(not versioned yet)'} "
          f"(content {model_version(settings.recommender_dir) or 'none'})")
    for version in registry.versions():
        print(f"{'*' if version == served else ' '} {version}")
    for entry in registry.history()[-10:]:
        print("history: " + json.dumps(entry))
    print(json.dumps({"served": served, "versions": registry.versions(),
                      "stack": registry.stack()}))
    return 0


def model_rollback_main(argv: Sequence[str] | None = None,
                        settings: Settings | None = None) -> int:
    """`concierge model rollback`: serve the version promoted before the current one."""
    from workers.recommender.versions import Registry

    parser = argparse.ArgumentParser(
        prog="concierge model rollback", formatter_class=CommandHelp,
        description="Serve the recommender version promoted before the current one. Workers\n"
                    "load it within CONCIERGE_MODEL_CHECK_S, without a restart.")
    parser.parse_args(argv)
    settings = settings or Settings()
    registry = Registry(settings.recommender_dir)
    try:
        previous = registry.rollback()
    except ValueError as error:
        print(f"concierge model rollback: {error}", file=sys.stderr)
        return 2
    print(f"serving {previous} again")
    print(json.dumps({"served": previous}))
    return 0


def model_retrain_main(argv: Sequence[str] | None = None,
                       settings: Settings | None = None) -> int:
    """`concierge model retrain`: one retrain-evaluate-promote cycle, now."""
    from workers.encoder import configure_torch
    from workers.recommender.retrain import retrain

    parser = argparse.ArgumentParser(
        prog="concierge model retrain", formatter_class=CommandHelp,
        description="Train a recommender from the store's orders and feedback, rank each\n"
                    "customer's newest purchase with it and with the served model, and promote it\n"
                    "only when its NDCG@10 is better beyond the paired 95% interval. Prints the\n"
                    "time of each step; the last line is JSON.")
    parser.add_argument("--shuffled", action="store_true",
                        help="train the candidate on shuffled purchases: a worse model, which "
                             "must be refused")
    parser.add_argument("--seed", type=int, default=7, help="split, training and resamples")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    configure_torch(settings.worker_threads)
    verdict = retrain(settings, store_data(settings), worse=args.shuffled, seed=args.seed)
    point, low, high = verdict.gain_ci95
    print(f"candidate {verdict.candidate}: NDCG@10 {verdict.ndcg_candidate:.4f} against the "
          f"served {verdict.ndcg_served:.4f} on {verdict.cases} newest purchases, gain "
          f"{point:+.4f} (95% CI {low:+.4f} to {high:+.4f}): "
          f"{'promoted' if verdict.promoted else 'refused'}, {verdict.reason}")
    print("steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in verdict.seconds.items()))
    print(json.dumps({"retrain": verdict.as_json()}))
    return 0


def bench_recommender_main(
    argv: Sequence[str] | None = None, settings: Settings | None = None
) -> int:
    """`concierge bench recommender`: scoring latency, Celery round trip, throughput, RSS."""
    from workers.recommender.benchmark import benchmark_command

    parser = argparse.ArgumentParser(prog="concierge bench recommender")
    parser.add_argument(
        "--model", type=Path, help="the model folder (default: CONCIERGE_RECOMMENDER_DIR)"
    )
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


def beat_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge beat`: the schedule, and the worker that runs the retraining it starts."""
    parser = argparse.ArgumentParser(
        prog="concierge beat", formatter_class=CommandHelp, allow_abbrev=False,
        description="Celery beat with one worker for its jobs: every CONCIERGE_RETRAIN_EVERY_S\n"
                    "the recommender is retrained from the store, evaluated against the served\n"
                    "model and promoted only when better (`concierge model retrain` runs one\n"
                    "cycle now). Run one per deployment; it needs the models folder the scoring\n"
                    "workers read. Other options go to `celery worker`.")
    args, celery_args = parser.parse_known_args(list(argv or []))
    del args
    from workers.app import build_app, training_queue

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    if settings.retrain_every_s <= 0:
        print("concierge beat: CONCIERGE_RETRAIN_EVERY_S is 0, so nothing is scheduled",
              file=sys.stderr)
        return 2
    app = build_app(settings)
    schedule = settings.models_dir / "celerybeat-schedule"
    app.worker_main(["worker", "--beat", f"--schedule={schedule}", "-Q",
                     training_queue(settings), "--concurrency=1",
                     f"--loglevel={settings.log_level}", *celery_args])
    return 0


def worker_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge worker`: a Celery worker with the project's settings (extra args pass on)."""
    parser = argparse.ArgumentParser(
        prog="concierge worker", formatter_class=CommandHelp, allow_abbrev=False,
        description="A Celery worker that scores products for the bots: the recommender in\n"
                    "CONCIERGE_RECOMMENDER_DIR, loaded once per process; jobs from\n"
                    "CONCIERGE_CELERY_BROKER_URL, queue CONCIERGE_CELERY_QUEUE. Every other\n"
                    "option goes to `celery worker` (--pool, --hostname, --loglevel, ...;\n"
                    "`celery worker --help` lists them).")
    parser.add_argument("-c", "--concurrency", type=int, metavar="N",
                        help="worker processes, each holding the model (default: "
                             "CONCIERGE_WORKER_CONCURRENCY, 1 unless set)")
    args, celery_args = parser.parse_known_args(list(argv or []))
    from workers.app import build_app

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    app = build_app(settings)
    concurrency = args.concurrency or settings.worker_concurrency
    app.worker_main(["worker", f"--loglevel={settings.log_level}", *celery_args,
                     f"--concurrency={concurrency}"])
    return 0
