"""What an experiment (`concierge simulate`) needs of the in-process bandit: switch it on and
off, learn or only log, keep and restore its state, and judge a state from logged slates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.shopdb.learning import LearningStore
from workers.recommender.bandit import STATE, BanditLearner, BanditRanker, Policy, Posterior
from workers.recommender.offpolicy import CLICKS, PURCHASES, Logged, estimate
from workers.recommender.service import ScoringService


class BanditControls:
    def __init__(self, service: ScoringService) -> None:
        if service.bandit is None:
            raise ValueError("the scoring service was built without the bandit")
        self.service = service
        self.ranker: BanditRanker = service.bandit
        self.store: LearningStore = self.ranker.store

    @property
    def exploration(self) -> float:
        return self.ranker.exploration

    def serve(self, on: bool) -> None:
        """Re-rank with the bandit, or show the model's own order."""
        self.service.bandit = self.ranker if on else None

    def serving(self) -> bool:
        return self.service.bandit is not None

    def learner(self, update: bool) -> BanditLearner:
        """Closes slates; `update=False` logs outcomes and leaves the state as it is."""
        return BanditLearner(self.store, update)

    def state(self) -> Posterior:
        return self.ranker.posterior()

    def restore(self, posterior: Posterior | None = None) -> None:
        """Serve `posterior` (the prior when None) from now on."""
        chosen = posterior or Posterior.prior()
        self.store.update_bandit(STATE, lambda _: chosen.to_json())

    def read(self, path: Path) -> Posterior:
        """A saved state; ValueError or OSError saying what is wrong with the file."""
        try:
            return Posterior.from_json(json.loads(path.read_text()))
        except KeyError as error:
            raise ValueError(f"not a bandit state: no {error}") from error

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.state().to_json()))

    def export(self, since: float, path: Path) -> int:
        """The slates closed since `since`, as JSON lines; how many."""
        count = 0
        with path.open("w") as out:
            for record in self.store.slates(since=since):
                out.write(json.dumps(record.to_json()) + "\n")
                count += 1
        return count

    def slate_figures(self, since: float) -> dict[str, Any]:
        """Clicks and purchases per slate closed since `since`: what off-policy evaluation
        estimates, measured."""
        closed = list(self.store.slates(since=since))
        if not closed:
            return {"slates": 0}
        bought = sum(s.kind in PURCHASES for s in closed)
        clicked = sum(s.kind in CLICKS for s in closed)
        return {"slates": len(closed), "purchases_per_slate": round(bought / len(closed), 4),
                "clicks_per_slate": round(clicked / len(closed), 4)}

    def off_policy(self, logged: tuple[float, float], posterior: Posterior,
                   seed: int) -> dict[str, dict[str, list[float]]]:
        """Estimates for `posterior` (with this exploration) from the slates shown in the
        `logged` (since, until) window: {"clicks"|"purchases": {"logged"|"ips"|"snips"|"dr":
        [value, low, high]}}."""
        since, until = logged
        logs = Logged.of(list(self.store.slates(since=since, until=until)))
        found = estimate(logs, Policy(posterior, self.exploration), seed)
        return {reward: {key: e.as_json() for key, e in values.items()}
                for reward, values in found.items()}
