"""In-process scoring: the same code answers the embedded default and the Celery workers.

One request runs in two stages over the whole catalog, with no Python loop per item:
1. filters from the request (budget, category, stock, required tags, already shown) become one
   boolean mask; candidate retrieval ranks every allowed item by text similarity to the request
   and to the customer's recent items (popularity when there is neither) and keeps the best few
   hundred; when the customer stated a request, only its best-matching tenth goes on;
2. the transformer ranks those candidates from the customer's history and the request text;
   the final score blends the model's and the retriever's standardised scores.
The top k come back as `Suggestion`s, each with the evidence for its explanation.
"""

from __future__ import annotations

import csv
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.infra import metrics
from core.infra.logs import event
from core.infra.settings import Settings
from core.shop.catalog import Product
from core.shop.live import LiveCatalog
from core.turn.evidence import gather, has_tag, in_category
from core.turn.recommendation import RecommendationRequest, Suggestion
from workers.encoder import unpack_vector
from workers.recommender import model as model_module
from workers.recommender.bandit import BanditRanker, Taste, candidate_features
from workers.recommender.data import ItemRecord, item_record, load_beauty
from workers.recommender.model import RecommenderNet, pad_histories
from workers.recommender.versions import ServedModel

if TYPE_CHECKING:
    from core.shopdb.database import ShopDatabase

log = logging.getLogger(__name__)

Encoder = Callable[[list[str]], Tensor]  # texts -> (N, 384) normalised embeddings


@dataclass(frozen=True)
class ServiceConfig:
    candidates: int = 300  # stage-1 pool size
    min_candidates: int = 10  # smallest pool when the request has text
    recent_items: int = 5  # history items whose text steers retrieval
    # What the customer asks for now outweighs what they bought before: the request's weight
    # in retrieval is 1, the recent history's this much, and in the final blend the retriever
    # (which carries the request most directly) gets `retrieval_weight` against the model's 1.
    history_weight: float = 0.25
    retrieval_weight: float = 1.5
    query_cache: int = 1024  # request texts whose embeddings are kept


@dataclass(frozen=True)
class CandidatePool:
    """What stage 1 hands to stage 2 for one request."""

    history: list[int]  # the customer's items (and a liked one last), catalog numbers
    like: int | None  # the item of "more like this", if pressed
    query: Tensor | None  # (D,) the request text's embedding
    items: Tensor  # (C,) candidate catalog numbers, at most `ServiceConfig.candidates`
    retrieval: Tensor  # (C,) their retrieval scores


class ScoringService:
    def __init__(
        self,
        model: RecommenderNet,
        products: Sequence[Product],
        histories: Mapping[str, Sequence[str]],
        encoder: Encoder,
        config: ServiceConfig = ServiceConfig(),
        catalog: LiveCatalog | None = None,
        item_encoder: Encoder | None = None,
        bandit: BanditRanker | None = None,
        served: ServedModel | None = None,
    ) -> None:
        self.model = model
        self.served = served  # the model folder to follow: a promotion is loaded, no restart
        if served is not None:
            metrics.record_served_model(served.version or "none")
        self.config = config
        self.bandit = bandit  # re-ranks the best candidates from feedback, when learning is on
        self._encode = encoder  # request texts
        self._encode_items = item_encoder or encoder  # the text of products new to the model
        self._queries: OrderedDict[str, Tensor] = OrderedDict()
        self._queries_lock = threading.Lock()
        self.request_encodes = 0  # request texts this service encoded itself (not cached/given)
        self._raw_histories = histories
        # With a live catalog, a change in the shop (price, stock, a new product) is picked up
        # by the next request; `products` is then the catalog as it is now.
        self._catalog = catalog
        self._snapshot = catalog.snapshot() if catalog is not None else None
        self._reloading = threading.Lock()
        self._load(products)
        model.eval()
        model.item_table()  # build the cached item table now, not in the first request

    def _load(self, products: Sequence[Product]) -> None:
        """The per-item tensors the filters read, for this catalog."""
        self._loaded = products
        _add_new_items(self.model, products, self._encode_items)
        self._index = {
            item_id: number for number, item_id in enumerate(self.model.config.item_ids, 1)
        }
        size = len(self.model.config.item_ids) + 1
        self._products: list[Product | None] = [None] * size
        for product in products:
            self._products[self._index[product.id]] = product
        self._sellable = torch.tensor([p is not None for p in self._products])
        self._price = torch.tensor([p.price if p else math.inf for p in self._products])
        self._stock = torch.tensor([p.stock if p else 0 for p in self._products])
        self._categories: dict[str, Tensor] = {}
        self._tags: dict[str, Tensor] = {}
        for number, entry in enumerate(self._products):
            if entry is None:
                continue
            product = entry
            for name in {product.category.lower(), product.subcategory.lower()} - {""}:
                self._categories.setdefault(name, torch.zeros(size, dtype=torch.bool))[number] = (
                    True
                )
            for tag in {t.lower() for t in (*product.attributes, *product.colors)}:
                self._tags.setdefault(tag, torch.zeros(size, dtype=torch.bool))[number] = True
        self._histories = {
            user: [self._index[i] for i in items if i in self._index]
            for user, items in self._raw_histories.items()
        }
        counts = torch.zeros(size)
        for items in self._histories.values():
            for item in items:
                counts[item] += 1
        self._popularity = torch.log1p(counts)
        self._most_reviews = max((p.review_count for p in products), default=0)
        self._text = self.model.text  # (N+1, D) normalised MiniLM embeddings

    def _follow_model(self) -> None:
        """Load the served model again when a promotion or a rollback moved it."""
        if self.served is None or not self.served.changed():
            return
        with self._reloading:
            model, _ = model_module.load_checkpoint(self.served.folder)
            model.eval()
            self.model = model
            self._load(self._loaded)
            model.item_table()
        version = self.served.version
        metrics.record_served_model(version or "none")
        event(log, "recommender.model_reloaded", model=str(self.served.folder), version=version)

    def _follow_catalog(self) -> None:
        if self._catalog is None:
            return
        snapshot = self._catalog.snapshot()
        if snapshot is self._snapshot:
            return
        with self._reloading:
            if snapshot is not self._snapshot:
                self._load(snapshot.all())
                self.model.item_table()
                self._snapshot = snapshot

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        config: ServiceConfig = ServiceConfig(),
        catalog: LiveCatalog | None = None,
    ) -> ScoringService:
        """The settings' model serving the store database's catalog, followed live (or the
        Amazon Beauty data set's items as they are, for benchmarks of the model alone).
        `catalog`: the live catalog this process already holds (the chat's), shared rather
        than read and followed twice."""
        from workers.encoder import EmbeddingCache, encode

        model, _ = model_module.load_checkpoint(settings.recommender_dir)
        if settings.recommender_catalog == "amazon-beauty":
            catalog = None
            data = load_beauty(settings.data_dir / "amazon_beauty")
            products = products_from_records(data.items)
            histories = {
                user: [data.items[i - 1].item_id for i in items]
                for user, items in data.sequences.items()
            }
        else:
            from core.shopdb.database import ShopDatabase
            from core.shopdb.services import live_catalog

            database = ShopDatabase(settings.store_url.get_secret_value())
            database.check_ready()
            catalog = catalog or live_catalog(database, settings.store_check_s)
            products = list(catalog.all())
            histories = store_histories(database)
        # Product texts stay float32, as the model's own item vectors were made: they are
        # encoded once and cached, not per turn. Request texts, encoded in turns, follow the
        # settings' precision.
        items = EmbeddingCache(settings.models_dir / "embeddings" / "catalog-text.pt")
        precision = settings.encoder_precision
        bandit = None
        if settings.bandit and settings.recommender_catalog == "store":
            from core.shopdb.learning import LearningStore

            bandit = BanditRanker(LearningStore(database), settings.bandit_exploration,
                                  settings.bandit_candidates, settings.bandit_refresh_s)
        service = cls(
            model, products, histories, lambda texts: encode(texts, precision=precision),
            config, catalog, items, bandit, ServedModel(settings.recommender_dir,
                                                        settings.model_check_s),
        )
        event(
            log,
            "recommender.service.ready",
            precision=precision,
            items=len(products),
            model=str(settings.recommender_dir),
            users=len(histories),
        )
        return service

    # -- one request ----------------------------------------------------------------------

    @torch.inference_mode()
    def recommend(self, request: RecommendationRequest) -> list[Suggestion]:
        started = time.perf_counter()
        pool = self.candidate_pool(request)
        if pool is None:
            return []
        ranking = self.model_scores(pool)  # (C,)
        final = _standardise(ranking)
        if pool.query is not None or pool.history:
            final = final + self.config.retrieval_weight * _standardise(pool.retrieval)
        if self.bandit is not None and request.k < min(self.bandit.candidates, len(pool.items)):
            suggestions = self._learnt_slate(pool, final, request, self.bandit)
        else:
            order = final.topk(min(request.k, len(pool.items))).indices
            suggestions = [
                self._suggestion(int(pool.items[i]), float(final[i]), request, pool.history,
                                 pool.like)
                for i in order
            ]
        event(
            log,
            "recommender.scored",
            user=request.user_id,
            candidates=len(pool.items),
            history=len(pool.history),
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return suggestions

    def _learnt_slate(self, pool: CandidatePool, final: Tensor, request: RecommendationRequest,
                      bandit: BanditRanker) -> list[Suggestion]:
        """The bandit's pick of `request.k` among the best `bandit.candidates`, logged."""
        started = time.perf_counter()
        top = [int(i) for i in final.topk(min(bandit.candidates, len(pool.items))).indices]
        numbers = [int(pool.items[i]) for i in top]
        products = [p for p in (self._products[n] for n in numbers) if p is not None]
        past = [p for p in (self._products[i] for i in pool.history) if p is not None]
        features = candidate_features(products, [float(final[i]) for i in top], request,
                                      Taste.of(past), self._most_reviews)
        order, propensities, version = bandit.rank(features, request.k)
        ranked = time.perf_counter()
        slate = bandit.log(features, order, propensities, version)
        bandit.costs.append((ranked - started, time.perf_counter() - ranked))
        return [
            self._suggestion(numbers[c], float(final[top[c]]), request, pool.history, pool.like)
            .model_copy(update={"slate": slate, "propensity": round(propensity, 4)})
            for c, propensity in zip(order, propensities, strict=True)
        ]

    @torch.inference_mode()
    def candidate_pool(self, request: RecommendationRequest) -> CandidatePool | None:
        """Stage 1: the items the model will rank for `request` (None when nothing is allowed)."""
        self._follow_model()
        self._follow_catalog()
        history = list(self._histories.get(request.user_id, []))
        like = self._index.get(request.like_item_id or "")
        if like is not None:
            history.append(like)  # "more like this" is the freshest signal there is
        query = self._query(request)
        allowed = self._allowed(request, history)
        if not bool(allowed.any()):
            return None
        retrieval = self._retrieval_scores(history, like, query)  # (N+1,)
        retrieval = retrieval.masked_fill(~allowed, -math.inf)
        available = int(allowed.sum())
        size = min(self.config.candidates, available)
        if query is not None:
            # A stated request gates relevance: only the best-matching tenth of what is
            # allowed (at least `min_candidates`) goes on to be ranked by the model.
            size = min(size, max(self.config.min_candidates, available // 10))
        items = retrieval.topk(size).indices  # (C,)
        return CandidatePool(history, like, query, items, retrieval[items])

    def recommend_many(self, requests: Sequence[RecommendationRequest]) -> list[list[Suggestion]]:
        return [self.recommend(request) for request in requests]

    def _query(self, request: RecommendationRequest) -> Tensor | None:
        parts = [request.text, request.category or "", *request.attributes, *request.colors]
        text = " ".join(" ".join(part for part in parts if part).split()).lower()
        if not text:
            return None
        if request.text_vector is not None:  # the turn encoded the message already
            shared = unpack_vector(request.text_vector)
            if shared is not None:
                return shared
            event(log, "recommender.vector.invalid", logging.WARNING, user=request.user_id)
        with self._queries_lock:  # turns run in several threads; the encode runs unlocked
            cached = self._queries.get(text)
            if cached is not None:
                self._queries.move_to_end(text)
                return cached
        encoded = self._encode([text])[0]
        with self._queries_lock:
            self.request_encodes += 1
            self._queries[text] = encoded
            while len(self._queries) > self.config.query_cache:
                self._queries.popitem(last=False)
        return encoded

    def forget_requests(self) -> None:
        """Drop the cached request vectors: the next requests are all new texts to it."""
        with self._queries_lock:
            self._queries.clear()

    def _allowed(self, request: RecommendationRequest, history: list[int]) -> Tensor:
        allowed = self._sellable.clone()
        if request.budget_max is not None:
            allowed &= self._price <= request.budget_max
        if request.budget_min is not None:
            allowed &= self._price >= request.budget_min
        if request.in_stock_only:
            allowed &= self._stock > 0
        if request.category:
            allowed &= self._categories.get(request.category.lower(), torch.zeros_like(allowed))
        # Wanted tags the catalog knows are required; unknown words only steer by text.
        for tag in (*request.attributes, *request.colors):
            mask = self._tags.get(tag.lower())
            if mask is not None:
                allowed &= mask
        seen = [self._index[i] for i in request.exclude if i in self._index] + history
        if seen:
            allowed[seen] = False
        return allowed

    def _retrieval_scores(
        self, history: list[int], like: int | None, query: Tensor | None
    ) -> Tensor:
        signals: list[Tensor] = []
        if query is not None:
            signals.append(query)
        recent = history[-self.config.recent_items :]
        if recent:
            profile = self._text[recent].mean(0)
            if like is not None:
                profile = profile + self._text[like]
            profile = torch.nn.functional.normalize(profile, dim=0)
            signals.append(profile * (self.config.history_weight if query is not None else 1.0))
        if not signals:
            return self._popularity.clone()
        direction = torch.stack(signals).sum(0)  # (D,)
        # A little popularity breaks ties between near-identical texts in favour of proven items
        # (one fused pass over the catalog's embeddings: at 12k items it is memory-bound).
        return torch.addmv(self._popularity, self._text, direction, beta=0.01)  # (N+1,)

    def model_scores(self, pool: CandidatePool) -> Tensor:
        """Stage 2: the transformer's score of each candidate in the pool. (C,)"""
        batch, lengths = pad_histories([pool.history], self.model.config.max_len)
        request = pool.query.unsqueeze(0) if pool.query is not None else None
        user = self.model.user_vectors(batch, lengths, request)[0]  # (C_dim,)
        return self.model.item_table()[pool.items] @ user  # (C,)

    def _suggestion(
        self,
        number: int,
        score: float,
        request: RecommendationRequest,
        history: list[int],
        like: int | None,
    ) -> Suggestion:
        product = self._products[number]
        assert product is not None  # only sellable items pass the mask
        past = [p for p in (self._products[i] for i in history) if p is not None]
        liked = self._products[like] if like is not None else None
        return Suggestion(
            item_id=product.id,
            title=product.title,
            price=product.price,
            score=round(score, 4),
            evidence=gather(product, request, past, liked),
        )

    # -- facts for tests and callers ------------------------------------------------------

    def product(self, item_id: str) -> Product | None:
        number = self._index.get(item_id)
        return self._products[number] if number is not None else None

    def matches_filters(self, product: Product, request: RecommendationRequest) -> bool:
        """The filter rules in plain Python, one product at a time (for checks and tests)."""
        if request.budget_max is not None and product.price > request.budget_max:
            return False
        if request.budget_min is not None and product.price < request.budget_min:
            return False
        if request.in_stock_only and product.stock <= 0:
            return False
        if request.category and not in_category(product, request.category):
            return False
        known = [t for t in (*request.attributes, *request.colors) if t.lower() in self._tags]
        if not all(has_tag(product, tag) for tag in known):
            return False
        return product.id not in request.exclude


def load_histories(path: Path) -> dict[str, list[str]]:
    """user -> item ids, oldest first, from an interactions CSV (empty when there is none)."""
    if not path.exists():
        return {}
    rows: dict[str, list[tuple[float, str]]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["user_id"], []).append((float(row["timestamp"]), row["item_id"]))
    return {user: [item for _, item in sorted(items)] for user, items in rows.items()}


def store_histories(database: ShopDatabase) -> dict[str, list[str]]:
    """customer -> product ids, oldest first: their ordered lines and recorded interactions."""
    rows: dict[str, list[tuple[datetime, str]]] = {}
    for customer, item, when in database.purchase_events():
        rows.setdefault(customer, []).append((when, item))
    # sorted() on the time alone is stable: lines of one order keep their order.
    return {
        user: [item for _, item in sorted(items, key=lambda pair: pair[0])]
        for user, items in rows.items()
    }


def products_from_records(items: Sequence[ItemRecord]) -> list[Product]:
    """Catalog products for a public data set's items, for benchmarks. Facts the data set
    lacks stay empty (no rating claims: review_count 0), and ids keep the data set's own form,
    so these are built without the demo store's id validation."""
    products = []
    for item in items:
        path = item.category.split(" > ") if item.category else [""]
        products.append(
            Product.model_construct(
                id=item.item_id,
                title=item.title,
                brand=item.brand,
                category=path[0],
                subcategory=path[-1],
                price=item.price or 0.0,
                currency="USD",
                colors=(),
                sizes=(),
                description=item.description,
                attributes=item.attributes,
                rating=0.0,
                review_count=0,
                stock=1,
                materials="",
                warranty_months=0,
            )
        )
    return products


def _standardise(scores: Tensor) -> Tensor:
    finite = scores[torch.isfinite(scores)]
    if finite.numel() < 2:
        return torch.zeros_like(scores)
    return (scores - finite.mean()) / (finite.std() + 1e-6)


def _add_new_items(model: RecommenderNet, products: Sequence[Product], encoder: Encoder) -> None:
    """Catalog items the model never saw join it with their text embedding and no ID
    embedding: they are scored by text alone (cold start)."""
    known = set(model.config.item_ids)
    new = [p for p in products if p.id not in known]
    if not new:
        return
    texts = [item_record(p.model_dump()).text() for p in new]
    vectors = encoder(texts)  # (M, D)
    with torch.no_grad():
        model.text = torch.cat([model.text, vectors.to(model.text.dtype)])
        model.known = torch.cat([model.known, torch.zeros(len(new), dtype=torch.bool)])
        weight = model.id_embedding.weight
        model.id_embedding = torch.nn.Embedding.from_pretrained(
            torch.cat([weight, torch.zeros(len(new), weight.shape[1])]),
            freeze=True,
            padding_idx=0,
        )
    model.config.item_ids = [*model.config.item_ids, *(p.id for p in new)]
    model.config.n_items = len(model.config.item_ids)
    model.train(False)  # drop any cached item table
    event(log, "recommender.service.new_items", count=len(new))
