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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings
from core.turn.taxonomy import TaxonomyError


@dataclass(frozen=True)
class _Model:
    """One model `concierge train` keeps current."""

    name: str
    folder: Path
    state: str  # "current", "out of date" or "missing"
    train: Callable[[], int]  # builds it in `folder`; an exit status


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
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    try:
        models = _models(settings)
    except (OSError, TaxonomyError) as exc:
        print(f"concierge train: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for model in models:
            print(_line(model, model.state))
        return 1 if any(model.state != "current" for model in models) else 0
    outcome = {}
    for model in models:
        outcome[model.name] = model.state
        if model.state == "current" and not args.force:
            continue
        print(f"{model.name}: {model.state}, training", flush=True)
        started = time.perf_counter()
        try:
            status = model.train()
        except (OSError, TaxonomyError) as exc:
            print(f"{model.name}: {exc}", file=sys.stderr)
            return 2
        if status != 0:
            return status
        outcome[model.name] = (f"trained in {time.perf_counter() - started:.1f} s "
                               f"(was {model.state})")
    for model in models:
        print(_line(model, outcome[model.name]))
    return 0


def _models(settings: Settings) -> list[_Model]:
    """The models the settings use, each with its state and how to train it: a new model is
    one more entry here."""
    # torch and the training code only now, so that --help answers at once.
    from workers.encoder import configure_torch
    from workers.nlu.model import WEIGHTS
    from workers.nlu.training import is_current, train_nlu
    from workers.recommender.cli import store_data, train_recommender_main
    from workers.recommender.data import load_dataset
    from workers.recommender.model import CHECKPOINT
    from workers.recommender.train import checkpoint_is_current

    nlu_dir, recommender_dir = settings.nlu_path, settings.recommender_dir
    catalog = settings.recommender_catalog
    if catalog == "store":
        data = store_data(settings)
        source = ["--from-store"]
    else:
        data = load_dataset(catalog, settings.demo_dir, settings.data_dir)
        source = ["--dataset", catalog]

    def train_understanding() -> int:
        configure_torch(settings.nlu_threads)
        train_nlu(settings.nlu_taxonomy, nlu_dir, settings.data_dir)
        return 0

    def train_recommender() -> int:  # what `concierge train recommender --dataset ...` does
        return train_recommender_main([*source, "--out", str(recommender_dir)], settings)

    return [
        _Model("nlu", nlu_dir,
               _state(is_current(nlu_dir, settings.nlu_taxonomy), (nlu_dir / WEIGHTS).exists()),
               train_understanding),
        _Model("recommender", recommender_dir,
               _state(checkpoint_is_current(recommender_dir, data),
                      (recommender_dir / CHECKPOINT).exists()),
               train_recommender),
    ]


def _state(current: bool, present: bool) -> str:
    if current:
        return "current"
    return "out of date" if present else "missing"


def _line(model: _Model, what: str) -> str:
    return f"{model.name:<12} {model.folder!s:<28} {what}"
