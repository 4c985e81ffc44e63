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


def run_session(conversation: Conversation, customer: Shopper, number: int,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge simulate",
        description="Simulated customers with hidden needs shop through the real conversation.",
        formatter_class=CommandHelp,
    )
    parser.add_argument("--sessions", type=int, default=300, help="simulated shopping sessions")
    parser.add_argument("--recommender", choices=("model", "popularity"), default="model",
                        help="the trained recommender of the settings, or the popularity "
                        "baseline (filters, then most reviewed)")
    parser.add_argument("--max-turns", type=int, default=6, help="turns before a customer leaves")
    parser.add_argument("--seed", type=int, default=0, help="draws of customers and reactions")
    args = parser.parse_args(argv)
    from bots.wiring import build_conversation, configure_logging

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(sqlite_path=Path(tmp) / "simulate.sqlite3", state_backend="sqlite",
                            rate_limit_burst=0)
        configure_logging(settings, default_level="WARNING")
        conversation = build_conversation(settings, keep_records=False)
        catalog = conversation.services.catalog
        if args.recommender == "popularity":
            conversation = Conversation(
                _with_recommender(conversation, PopularityRecommender(catalog)),
                conversation.policy, lock_timeout_s=conversation.lock_timeout_s)
        profiles = Profile.read(settings.demo_dir / "customer_profiles.jsonl")
        sessions = []
        started = time.perf_counter()
        turns = 0
        for number in range(args.sessions):
            profile = rng.choice(profiles)
            need = draw_need(profile, catalog, rng)
            if need is None:
                continue
            patience = 2 + round(3 * (1 - profile.price_sensitivity))
            customer = Shopper(profile, need, random.Random(rng.random()), patience)
            session = run_session(conversation, customer, number, args.max_turns)
            sessions.append(session)
            turns += session.turns
        seconds = time.perf_counter() - started
    figures = Results(sessions).figures(random.Random(args.seed))
    figures |= {"recommender": args.recommender, "turns": turns,
                "turns_per_s": round(turns / seconds, 1), "seed": args.seed}
    print(f"{args.recommender}: {figures['sessions']} sessions, success "
          f"{figures['success_rate']:.1%} (95% CI {figures['success_ci95'][0]:.1%}-"
          f"{figures['success_ci95'][1]:.1%}), turns to success {figures['turns_to_success_mean']}"
          f", escalated {figures['escalation_rate']:.1%}, gave up {figures['give_up_rate']:.1%}")
    print("click-through by position: " + ", ".join(
        f"{p}: {rate:.1%}" for p, rate in figures["click_through"].items()))
    print(json.dumps({"simulate": figures}))
    return 0


def _with_recommender(conversation: Conversation, recommender: Any) -> Any:
    from dataclasses import replace

    return replace(conversation.services, recommender=recommender)
