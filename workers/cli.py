"""`concierge train`: build every model the settings use that is missing or out of date, like
`rasa train`, and say for each whether it was trained or is current.

The models: the local understanding model (`CONCIERGE_NLU_DIR`, from the taxonomy file) and the
recommender (`CONCIERGE_RECOMMENDER_DIR`, on the dataset `CONCIERGE_RECOMMENDER_CATALOG` names;
the demo store by default). A model is current when the fingerprint saved with it (its training
code and what it was trained from) matches today's. One model at a time: `concierge train nlu`,
`concierge train recommender ...`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings
from core.turn.taxonomy import TaxonomyError


def train_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge train [--check] [--force]`: exit 0 when every model is current afterwards."""
    parser = argparse.ArgumentParser(prog="concierge train", description=__doc__,
                                     formatter_class=CommandHelp)
    parser.add_argument("--check", action="store_true",
                        help="train nothing: say which models are missing or out of date, and "
                             "exit 1 if any is")
    parser.add_argument("--force", action="store_true",
                        help="train every model, current or not")
    args = parser.parse_args(argv)
    # torch and the training code only now, so that --help answers at once.
    from workers.encoder import configure_torch
    from workers.nlu.model import WEIGHTS
    from workers.nlu.training import is_current, train_nlu
    from workers.recommender.cli import train_recommender_main
    from workers.recommender.data import load_dataset
    from workers.recommender.model import CHECKPOINT
    from workers.recommender.train import checkpoint_is_current

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)

    nlu_dir, recommender_dir = settings.nlu_path, settings.recommender_dir
    try:
        data = load_dataset(settings.recommender_catalog, settings.demo_dir, settings.data_dir)
    except OSError as exc:
        print(f"recommender: cannot read the {settings.recommender_catalog} data ({exc})",
              file=sys.stderr)
        return 2
    states = {
        "nlu": _state(is_current(nlu_dir, settings.nlu_taxonomy), (nlu_dir / WEIGHTS).exists()),
        "recommender": _state(checkpoint_is_current(recommender_dir, data),
                              (recommender_dir / CHECKPOINT).exists()),
    }
    wanted = [name for name, state in states.items() if args.force or state != "current"]
    if args.check:
        for name, folder in (("nlu", nlu_dir), ("recommender", recommender_dir)):
            print(_line(name, str(folder), states[name]))
        return 1 if any(state != "current" for state in states.values()) else 0

    outcome = dict(states)
    if "nlu" in wanted:
        print(f"nlu: {states['nlu']}, training", flush=True)
        configure_torch(settings.nlu_threads)
        started = time.perf_counter()
        try:
            train_nlu(settings.nlu_taxonomy, nlu_dir, settings.data_dir)
        except (TaxonomyError, FileNotFoundError) as exc:
            print(f"nlu: {exc}", file=sys.stderr)
            return 2
        outcome["nlu"] = f"trained in {time.perf_counter() - started:.1f} s (was {states['nlu']})"
    if "recommender" in wanted:
        print(f"recommender: {states['recommender']}, training", flush=True)
        started = time.perf_counter()
        argv_recommender = ["--dataset", settings.recommender_catalog,
                            "--out", str(recommender_dir)]
        status = train_recommender_main(argv_recommender, settings)
        if status != 0:
            return status
        outcome["recommender"] = (f"trained in {time.perf_counter() - started:.1f} s "
                                  f"(was {states['recommender']})")
    for name, folder in (("nlu", nlu_dir), ("recommender", recommender_dir)):
        print(_line(name, str(folder), outcome[name]))
    return 0


def _state(current: bool, present: bool) -> str:
    if current:
        return "current"
    return "out of date" if present else "missing"


def _line(name: str, folder: str, what: str) -> str:
    return f"{name:<12} {folder:<28} {what}"
