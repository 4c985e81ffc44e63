"""`concierge simulate`: simulated customers shop through the real `Conversation`.

Each simulated customer is a store customer of the demo store with the latent profile the demo
was generated from (`customer_profiles.jsonl`: ground truth the assistant never reads). They
come with a hidden need drawn from that profile (a category, an attribute they care about and a
budget their price sensitivity sets), write in phrases of their own (`PHRASES`, kept apart from
the understanding model's training examples by a test), and react to each slate as their need
dictates: buy (press Details on a product that meets it), more like this, not for me, cheaper,
name the attribute, give up, or ask for a person. A session stops at a purchase, an escalation,
giving up, or `max_turns`.

The turns go through the real models (understanding, recommender) and the real policy; only
the customer is simulated. Printed: task success rate (with a bootstrap 95% interval), turns
to success, escalation and give-up rates, click-through per position, and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.infra.commands import CommandHelp
from core.infra.percentiles import median
from core.infra.settings import Settings
from core.shop.catalog import Catalog, Product
from core.turn.conversation import Conversation
from core.turn.messages import CollectingOutbox, Incoming, Reply
from core.turn.recommendation import Evidence, RecommendationRequest, Suggestion

# The customers' own words, never the understanding model's training examples (a test checks).
PHRASES: dict[str, tuple[str, ...]] = {
    "open_specific": (
        "hey there, I'm after {attr} {kind}",
        "do you stock {attr} {kind}?",
        "on the hunt for {kind}, ideally {attr}",
        "could you find me {attr} {kind} for under {budget}?",
        "{kind} please, {attr} if possible, no more than {budget}",
        "I'd love some {kind} that are {attr}",
        "shopping for {attr} {kind} today",
        "any {attr} {kind} around {budget}?",
    ),
    "open_vague": (
        "got any picks for me?",
        "what's good for me today?",
        "show me something I'd enjoy",
    ),
    "cheaper": (
        "too pricey for me, anything less expensive?",
        "those cost too much, cheaper ones?",
        "hmm, a bit less money please",
    ),
    "attribute": (
        "they have to be {attr} though",
        "it must be {attr}",
        "only {attr} ones please",
    ),
    "kind": (
        "no, I meant {kind}",
        "not what I want, I'm after {kind}",
    ),
    "give_up": ("never mind, thanks anyway", "ok I'll look elsewhere, bye"),
    "person": ("can I talk to someone real?", "get me a human please"),
}
GENERIC_TAIL = {"set", "kit", "pack", "pair", "bundle", "collection"}


@dataclass(frozen=True)
class Profile:
    customer_id: str
    favorite_categories: tuple[str, ...]
    favorite_attributes: tuple[str, ...]
    price_sensitivity: float

    @classmethod
    def read(cls, path: Path) -> list[Profile]:
        profiles = []
        for line in path.read_text().splitlines():
            raw = json.loads(line)
            profiles.append(cls(raw["customer_id"], tuple(raw["favorite_categories"]),
                                tuple(raw["favorite_attributes"]), float(raw["price_sensitivity"])))
        return profiles


@dataclass(frozen=True)
class Need:
    category: str
    attribute: str
    budget: float
    kind: str  # how the customer names the product type: "headphones", "rain jacket"

    def met_by(self, product: Product | None) -> bool:
        return (product is not None and product.in_stock and product.category == self.category
                and self.attribute in product.attributes and product.price <= self.budget)


def draw_need(profile: Profile, catalog: Catalog, rng: random.Random) -> Need | None:
    """A need from the profile that at least one product in stock meets, or None."""
    pairs = [(c, a) for c in profile.favorite_categories for a in profile.favorite_attributes]
    rng.shuffle(pairs)
    for category, attribute in pairs:
        fitting = [p for p in catalog.all() if p.in_stock and p.category == category
                   and attribute in p.attributes]
        if not fitting:
            continue
        target = rng.choice(fitting)
        # The less price-sensitive, the more headroom above the product they have in mind.
        budget = round(target.price * (1.0 + 0.6 * (1.0 - profile.price_sensitivity)))
        return Need(category, attribute, float(budget), kind_of(target))
    return None


def kind_of(product: Product) -> str:
    words = re.findall(r"[A-Za-z-]+", product.title.lower())
    if len(words) >= 2 and words[-1] in GENERIC_TAIL:
        return " ".join(words[-3:])
    return words[-1] if words else product.category


@dataclass
class Session:
    success: bool = False
    escalated: bool = False
    gave_up: bool = False
    turns: int = 0
    shown: list[int] = field(default_factory=list)  # slate sizes
    clicks: list[int] = field(default_factory=list)  # positions of suggestions pressed


@dataclass
class Shopper:
    profile: Profile
    need: Need
    rng: random.Random
    patience: int

    def say(self, kind: str) -> str:
        template = self.rng.choice(PHRASES[kind])
        return template.format(attr=self.need.attribute.replace("-", " "), kind=self.need.kind,
                               budget=f"${self.need.budget:,.0f}")

    def react(self, slate: list[tuple[int, Product | None]], failures: int) -> tuple[str, str]:
        """(kind, text or button payload) after seeing `slate` (position, product)."""
        for position, product in slate:
            if self.need.met_by(product):
                assert product is not None
                return "buy", f"details:{product.id}:{position}"
        if failures >= self.patience:
            return ("person", self.say("person")) if self.rng.random() < 0.3 else (
                "give_up", self.say("give_up"))
        right_kind = [(p, prod) for p, prod in slate
                      if prod is not None and prod.category == self.need.category]
        if not right_kind:
            if slate and self.rng.random() < 0.3:
                position, product = slate[0]
                return "not_for_me", f"skip:{product.id if product else ''}:{position}"
            return "kind", self.say("kind")
        with_attribute = [(p, prod) for p, prod in right_kind
                          if self.need.attribute in prod.attributes]
        if with_attribute:  # the right thing, too expensive
            return "cheaper", self.say("cheaper")
        if self.rng.random() < 0.4:
            position, product = right_kind[0]
            return "more_like", f"more:{product.id}:{position}"
        return "attribute", self.say("attribute")


def run_session(conversation: Conversation, customer: Shopper, number: int | str,
                max_turns: int) -> Session:
    session = Session()
    conversation_id = f"sim:{number}"
    catalog = conversation.services.catalog
    vague = customer.rng.random() < 0.2
    message, button = customer.say("open_vague" if vague else "open_specific"), None
    failures = 0
    while session.turns < max_turns:
        outbox = CollectingOutbox()
        conversation.handle(Incoming(conversation_id, customer.profile.customer_id,
                                     text=message if button is None else "", button=button,
                                     customer_id=customer.profile.customer_id), outbox)
        session.turns += 1
        state = conversation.services.store.load(conversation_id)
        if state.escalation.status != "none":
            session.escalated = True
            return session
        slate = _slate(outbox.replies, catalog)
        if slate:
            session.shown.append(len(slate))
        kind, said = customer.react(slate, failures)
        if kind == "give_up":
            session.gave_up = True
            return session
        if kind == "buy":
            # The press is sent (it closes the slate the bandit learns from) but not counted:
            # turns to success are the turns it took to be shown the right thing.
            conversation.handle(Incoming(conversation_id, customer.profile.customer_id,
                                         text="", button=said,
                                         customer_id=customer.profile.customer_id),
                                CollectingOutbox())
            session.success = True
            session.clicks.append(int(said.rsplit(":", 1)[1]))
            return session
        if kind in ("more_like", "not_for_me"):
            session.clicks.append(int(said.rsplit(":", 1)[1]))
        failures += 1
        message, button = (said, None) if kind not in ("more_like", "not_for_me") else ("", said)
    session.gave_up = True
    return session


def _slate(sent: Sequence[Reply], catalog: Catalog) -> list[tuple[int, Product | None]]:
    """The suggestions of the last reply that had any, as (position, product)."""
    for reply in reversed(sent):
        ids = [b.payload.split(":") for b in reply.buttons if b.payload.startswith("details:")]
        if ids:
            return [(int(position), catalog.get(item_id)) for _, item_id, position in ids]
    return []


class PopularityRecommender:
    """The baseline: the shop's filters (category, budget, attributes, stock), then the most
    reviewed first; no model, no history, no text."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        fitting = [
            p for p in self.catalog.all()
            if p.in_stock and p.id not in request.exclude
            and (request.category is None or p.category == request.category)
            and (request.budget_max is None or p.price <= request.budget_max)
            and (request.budget_min is None or p.price >= request.budget_min)
            and all(a in p.attributes for a in request.attributes)
        ]
        fitting.sort(key=lambda p: (-p.review_count, p.id))
        return [Suggestion(item_id=p.id, title=p.title, price=p.price, score=float(p.review_count),
                           evidence=Evidence(price=p.price, rating=p.rating,
                                             review_count=p.review_count,
                                             matched_attributes=tuple(
                                                 a for a in request.attributes
                                                 if a in p.attributes)))
                for p in fitting[: request.k]]


@dataclass
class Results:
    sessions: list[Session]

    def figures(self, rng: random.Random, resamples: int = 1000) -> dict[str, Any]:
        n = len(self.sessions)
        wins = [s.success for s in self.sessions]
        rates = sorted(sum(rng.choices(wins, k=n)) / n for _ in range(resamples))
        to_success = [s.turns for s in self.sessions if s.success]
        shown = Counter(p for s in self.sessions for size in s.shown for p in range(1, size + 1))
        clicked = Counter(p for s in self.sessions for p in s.clicks)
        return {
            "sessions": n,
            "success_rate": round(sum(wins) / n, 4),
            "success_ci95": [round(rates[int(0.025 * resamples)], 4),
                             round(rates[int(0.975 * resamples) - 1], 4)],
            "turns_to_success_mean": round(sum(to_success) / len(to_success), 2)
            if to_success else None,
            "turns_to_success_median": median(to_success) if to_success else None,
            "escalation_rate": round(sum(s.escalated for s in self.sessions) / n, 4),
            "give_up_rate": round(sum(s.gave_up for s in self.sessions) / n, 4),
            "click_through": {str(p): round(clicked[p] / shown[p], 4) if shown[p] else 0.0
                              for p in (1, 2, 3)},
        }


def run_sessions(conversation: Conversation, profiles: Sequence[Profile], sessions: int,
                 seed: int, max_turns: int, label: str = "") -> tuple[list[Session], int, float]:
    """`sessions` customers drawn with `seed` (the same customers and needs for the same seed,
    whatever serves them); their sessions, turns and seconds."""
    rng = random.Random(seed)
    catalog = conversation.services.catalog
    found, turns = [], 0
    started = time.perf_counter()
    for number in range(sessions):
        profile = rng.choice(profiles)
        need = draw_need(profile, catalog, rng)
        if need is None:
            continue
        patience = 2 + round(3 * (1 - profile.price_sensitivity))
        customer = Shopper(profile, need, random.Random(rng.random()), patience)
        session = run_session(conversation, customer, f"{label}{number}", max_turns)
        found.append(session)
        turns += session.turns
    return found, turns, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge simulate",
        description="Simulated customers with hidden needs shop through the real conversation.",
        formatter_class=CommandHelp,
    )
    parser.add_argument("--sessions", type=int, default=300,
                        help="simulated shopping sessions (with --learning: per evaluation)")
    parser.add_argument("--recommender", choices=("model", "popularity"), default="model",
                        help="the trained recommender of the settings, or the popularity "
                        "baseline (filters, then most reviewed)")
    parser.add_argument("--max-turns", type=int, default=6, help="turns before a customer leaves")
    parser.add_argument("--seed", type=int, default=0, help="draws of customers and reactions")
    learning = parser.add_argument_group("learning from feedback (the bandit re-ranker)")
    learning.add_argument("--bandit", choices=("off", "learn", "serve"), default="off",
                          help="learn: re-rank and update from every session; serve: re-rank "
                          "with a fixed state (--bandit-state), logging slates only")
    learning.add_argument("--bandit-state", type=Path, metavar="FILE",
                          help="the bandit state to start from (default: the prior, which ranks "
                          "as the model does)")
    learning.add_argument("--save-bandit", type=Path, metavar="FILE",
                          help="write the bandit state at the end")
    learning.add_argument("--exploration", type=float, default=Settings().bandit_exploration,
                          help="the bandit's exploration, 0-1")
    learning.add_argument("--slates-out", type=Path, metavar="FILE",
                          help="write the closed slates as JSON lines (for concierge eval policy)")
    learning.add_argument("--learning", metavar="N,N,...",
                          help="the comparison run: popularity, the model, and the bandit after "
                          "learning from each number of sessions, each judged on the same "
                          "--sessions customers; plus off-policy estimates of each bandit from "
                          "the logs of the model with exploration")
    args = parser.parse_args(argv)
    if not 0.0 <= args.exploration <= 1.0:
        parser.error(f"--exploration must be between 0 and 1, not {args.exploration}")
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    checkpoints: list[int] = []
    if args.learning:
        try:
            checkpoints = sorted({int(n) for n in args.learning.split(",") if n.strip()})
        except ValueError:
            parser.error(f"--learning takes session counts like 500,2000; not {args.learning!r}")
        if not checkpoints or checkpoints[0] < 1:
            parser.error("--learning needs positive session counts")
    if args.bandit == "off" and (args.bandit_state or args.save_bandit or args.slates_out):
        parser.error("--bandit-state, --save-bandit and --slates-out need --bandit learn|serve")
    from bots.wiring import build_conversation, configure_logging

    with tempfile.TemporaryDirectory() as tmp:
        # The bandit is built in any case; the lab switches what serves (`Lab.use_model`).
        settings = Settings(sqlite_path=Path(tmp) / "simulate.sqlite3", state_backend="sqlite",
                            store_url=SecretStr(f"sqlite:///{tmp}/store.sqlite3"),
                            rate_limit_burst=0,
                            bandit=True, bandit_exploration=args.exploration,
                            bandit_refresh_s=0.0)
        configure_logging(settings, default_level="WARNING")
        _demo_store(settings)  # the runs' slates and bandit state stay in this folder
        conversation = build_conversation(settings, keep_records=False)
        profiles = Profile.read(settings.demo_dir / "customer_profiles.jsonl")
        lab = Lab(conversation, profiles, args.max_turns)
        if checkpoints:
            return lab.compare(checkpoints, args.sessions, args.seed)
        if args.recommender == "popularity":
            lab.use_popularity()
        elif args.bandit != "off":
            if args.bandit_state:
                try:
                    lab.bandit.restore(lab.bandit.read(args.bandit_state))
                except (OSError, ValueError) as error:
                    parser.error(f"--bandit-state {args.bandit_state}: {error}")
            lab.use_bandit(learn=args.bandit == "learn")
        else:
            lab.use_model()
        since = time.time()
        sessions, turns, seconds = run_sessions(lab.conversation, profiles, args.sessions,
                                                args.seed, args.max_turns)
        figures = Results(sessions).figures(random.Random(args.seed))
        if args.bandit != "off":
            figures |= lab.bandit.slate_figures(since)
            if args.save_bandit:
                lab.bandit.save(args.save_bandit)
            if args.slates_out:
                lab.bandit.export(since, args.slates_out)
    name = args.recommender if args.bandit == "off" else f"bandit ({args.bandit})"
    figures |= {"recommender": name, "turns": turns,
                "turns_per_s": round(turns / seconds, 1), "seed": args.seed}
    print(f"{name}: {_summary(figures)}")
    print("click-through by position: " + ", ".join(
        f"{p}: {rate:.1%}" for p, rate in figures["click_through"].items()))
    print(json.dumps({"simulate": figures}))
    return 0


def _demo_store(settings: Settings) -> None:
    from bots.store import DEMO_FILES
    from core.shopdb.database import ShopDatabase
    from core.shopdb.importer import import_store

    database = ShopDatabase(settings.store_url.get_secret_value())
    try:
        files = {kind: settings.demo_dir / name for kind, name in DEMO_FILES.items()}
        import_store(database, {kind: path for kind, path in files.items() if path.exists()})
    finally:
        database.close()


def _summary(figures: dict[str, Any]) -> str:
    return (f"{figures['sessions']} sessions, success {figures['success_rate']:.1%} (95% CI "
            f"{figures['success_ci95'][0]:.1%}-{figures['success_ci95'][1]:.1%}), turns to "
            f"success {figures['turns_to_success_mean']}, escalated "
            f"{figures['escalation_rate']:.1%}, gave up {figures['give_up_rate']:.1%}")


class Lab:
    """One conversation whose ranking is switched between the variants being compared: the
    popularity baseline, the model, and the model re-ranked by the bandit (learning or not)."""

    def __init__(self, conversation: Conversation, profiles: Sequence[Profile],
                 max_turns: int) -> None:
        from bots.wiring import bandit_controls

        self.base = conversation
        self.profiles = profiles
        self.max_turns = max_turns
        self.bandit = bandit_controls(conversation)
        self.conversation = conversation

    def _serve(self, recommender: Any, bandit: bool, slates: Any) -> None:
        self.bandit.serve(bandit)
        self.conversation = Conversation(
            _with(self.base, recommender=recommender, slates=slates), self.base.policy,
            lock_timeout_s=self.base.lock_timeout_s)

    def use_popularity(self) -> None:
        self._serve(PopularityRecommender(self.base.services.catalog), False, None)

    def use_model(self) -> None:
        self._serve(self.base.services.recommender, False, None)

    def use_bandit(self, learn: bool) -> None:
        self._serve(self.base.services.recommender, True, self.bandit.learner(update=learn))

    def run(self, sessions: int, seed: int, label: str) -> list[Session]:
        return run_sessions(self.conversation, self.profiles, sessions, seed, self.max_turns,
                            label)[0]

    def compare(self, checkpoints: Sequence[int], sessions: int, seed: int) -> int:
        """Every variant on the same `sessions` customers (`seed`); the bandit learns from
        other customers up to each checkpoint."""
        rows: dict[str, dict[str, Any]] = {}
        outcomes: dict[str, list[bool]] = {}

        def judge(name: str) -> None:
            since = time.time()
            started = time.perf_counter()
            found = self.run(sessions, seed, f"{name}:")
            figures = Results(found).figures(random.Random(seed))
            if self.bandit.serving():
                figures |= self.bandit.slate_figures(since)
            figures["seconds"] = round(time.perf_counter() - started, 1)
            rows[name], outcomes[name] = figures, [s.success for s in found]
            print(f"{name}: {_summary(figures)}", flush=True)

        self.use_popularity()
        judge("popularity")
        self.use_model()
        judge("model")
        # The logs: the model's order explored around (the bandit's prior, not learning).
        self.bandit.restore()
        self.use_bandit(learn=False)
        logs_since = time.time()
        judge("model+exploration (logging)")
        logs = (logs_since, time.time())  # these slates only: the logging policy's
        snapshots: dict[int, Any] = {}
        self.bandit.restore()
        learnt = 0
        learning_s = 0.0
        for checkpoint in checkpoints:
            self.use_bandit(learn=True)
            started = time.perf_counter()
            self.run(checkpoint - learnt, seed + 1 + checkpoint, f"learn{checkpoint}:")
            learning_s += time.perf_counter() - started
            learnt = checkpoint
            snapshots[checkpoint] = self.bandit.state()
            self.use_bandit(learn=False)  # judged as it stands: no learning from the test
            judge(f"bandit after {checkpoint}")
        for checkpoint, posterior in snapshots.items():
            name = f"bandit after {checkpoint}"
            estimates = self.bandit.off_policy(logs, posterior, seed)
            actual = rows[name].get("purchases_per_slate", 0.0)
            rows[name]["off_policy"] = estimates
            rows[name]["off_policy_error"] = {
                key: round(abs(estimates["purchases"][key][0] - actual) / actual, 4)
                if actual else None for key in ("ips", "snips", "dr")
            }
            rows[name]["success_gain_vs_model"] = _paired_gain(
                outcomes[name], outcomes["model"], random.Random(seed))
        _print_comparison(rows, checkpoints)
        print(json.dumps({"simulate_learning": {
            "sessions": sessions, "seed": seed, "exploration": self.bandit.exploration,
            "learning_s": round(learning_s, 1), "policies": rows}}))
        return 0


def _print_comparison(rows: dict[str, dict[str, Any]], checkpoints: Sequence[int]) -> None:
    print()
    print(f"{'policy':<30}{'success':>9}{'95% CI':>16}{'turns':>7}{'escalated':>11}"
          f"{'buys/slate':>12}")
    for name, figures in rows.items():
        low, high = figures["success_ci95"]
        print(f"{name:<30}{figures['success_rate']:>9.1%}{f'{low:.1%}-{high:.1%}':>16}"
              f"{figures['turns_to_success_mean'] or 0:>7}{figures['escalation_rate']:>11.1%}"
              f"{figures.get('purchases_per_slate', float('nan')):>12.4f}")
    for checkpoint in checkpoints:
        figures = rows[f"bandit after {checkpoint}"]
        gain = figures["success_gain_vs_model"]
        estimates = figures["off_policy"]["purchases"]
        errors = figures["off_policy_error"]
        print(f"bandit after {checkpoint}: success vs model {gain[0]:+.1%} (paired 95% CI "
              f"{gain[1]:+.1%} to {gain[2]:+.1%}); purchases per slate actual "
              f"{figures.get('purchases_per_slate')}, estimated from the logs: "
              + ", ".join(f"{key} {v[0]:.4f} (error {_percent(errors[key])})"
                          for key, v in estimates.items() if key != "logged"))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _paired_gain(ours: list[bool], theirs: list[bool], rng: random.Random,
                 resamples: int = 1000) -> list[float]:
    """Success rate difference on the same customers, with its paired bootstrap 95% interval."""
    pairs = list(zip(ours, theirs, strict=True))
    n = len(pairs)
    gains = sorted(sum(a - b for a, b in rng.choices(pairs, k=n)) / n for _ in range(resamples))
    point = sum(a - b for a, b in pairs) / n
    return [round(point, 4), round(gains[int(0.025 * resamples)], 4),
            round(gains[int(0.975 * resamples) - 1], 4)]


def _with(conversation: Conversation, **services: Any) -> Any:
    from dataclasses import replace

    return replace(conversation.services, **services)
