"""In-process scoring: filters hold for every suggestion, evidence is true, text steers."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import sys
import threading
from pathlib import Path

import pytest
import torch
from sqlalchemy import update

from core.shop.catalog import Product
from core.shopdb.database import ShopDatabase
from core.shopdb.importer import import_store
from core.shopdb.services import live_catalog
from core.shopdb.tables import products as product_table
from core.turn.evidence import has_tag, product_stems, singular
from core.turn.recommendation import RecommendationRequest
from tests.workers.conftest import TinyStore
from workers.encoder import encode
from workers.recommender import model as model_module
from workers.recommender.service import (
    ScoringService,
    ServiceConfig,
    load_histories,
    store_histories,
)


@pytest.fixture(scope="module")
def service(tiny_store: TinyStore) -> ScoringService:
    model, _ = model_module.load_checkpoint(tiny_store.model_dir)
    products = [Product(**p) for p in tiny_store.products]  # type: ignore[arg-type]
    histories = load_histories(tiny_store.folder / "interactions.csv")
    return ScoringService(model, products, histories, lambda texts: encode(texts))


def _random_request(rng: random.Random) -> RecommendationRequest:
    return RecommendationRequest(
        user_id=rng.choice(["C0001", "C0002", "C0050", "stranger"]),
        text=rng.choice(["", "rain jacket", "vegan lipstick", "boots for hiking", "gift"]),
        category=rng.choice([None, "outerwear", "beauty", "footwear", "sneakers"]),
        budget_min=rng.choice([None, 20.0]),
        budget_max=rng.choice([None, 60.0, 150.0]),
        attributes=rng.choice([(), ("waterproof",), ("vegan",), ("sparkly",)]),
        colors=rng.choice([(), ("black",)]),
        exclude=tuple(rng.sample([f"P{n:04d}" for n in range(1, 81)], 5)),
        like_item_id=rng.choice([None, "P0009"]),
        in_stock_only=rng.choice([True, False]),
        k=rng.choice([1, 3, 5]),
    )


def test_every_suggestion_passes_the_request_filters(service: ScoringService) -> None:
    rng = random.Random(11)
    answered = 0
    for _ in range(60):
        request = _random_request(rng)
        suggestions = service.recommend(request)
        assert len(suggestions) <= request.k
        history = set(load_histories_for(service, request.user_id))
        for suggestion in suggestions:
            product = service.product(suggestion.item_id)
            assert product is not None
            assert service.matches_filters(product, request), (request, product)
            assert product.id not in history and product.id != request.like_item_id
            if request.budget_max is not None:
                assert product.price <= request.budget_max
            if request.in_stock_only:
                assert product.stock > 0
            # "sparkly" is no catalog tag, so it cannot filter; known tags must hold.
            for tag in request.attributes:
                if tag != "sparkly":
                    assert has_tag(product, tag)
        answered += bool(suggestions)
    assert answered > 20  # the filters are not so strict that nothing comes back


def load_histories_for(service: ScoringService, user: str) -> list[str]:
    ids = service.model.config.item_ids
    return [ids[i - 1] for i in service._histories.get(user, [])]


def test_evidence_states_facts_of_the_product(service: ScoringService) -> None:
    request = RecommendationRequest(
        user_id="C0001",
        text="waterproof rain jacket for trails",
        attributes=("waterproof",),
        budget_max=150.0,
        k=5,
    )
    suggestions = service.recommend(request)
    assert suggestions
    past = [service.product(i) for i in load_histories_for(service, "C0001")]
    for suggestion in suggestions:
        product = service.product(suggestion.item_id)
        assert product is not None
        evidence = suggestion.evidence
        assert (suggestion.title, suggestion.price) == (product.title, product.price)
        assert evidence.price == product.price and evidence.rating == product.rating
        assert evidence.review_count == product.review_count
        assert evidence.budget_max == 150.0
        assert evidence.matched_attributes == ("waterproof",)
        assert all(singular(t) in product_stems(product) for t in evidence.matched_terms)
        past_titles = {p.title for p in past if p is not None}
        assert set(evidence.similar_history) <= past_titles


def test_request_text_steers_ranking_away_from_history(service: ScoringService) -> None:
    # C0003 bought only sneakers; asked for a rain jacket, they get rain jackets.
    jackets = service.recommend(
        RecommendationRequest(user_id="C0003", text="waterproof rain jacket", k=3)
    )
    assert [service.product(s.item_id).subcategory for s in jackets] == ["rain-jackets"] * 3  # type: ignore[union-attr]
    # Without a request, their history speaks: sneakers come first.
    usual = service.recommend(RecommendationRequest(user_id="C0003", k=3))
    assert service.product(usual[0].item_id).subcategory == "sneakers"  # type: ignore[union-attr]


def test_new_catalog_item_is_scored_by_its_text(tiny_store: TinyStore) -> None:
    model, _ = model_module.load_checkpoint(tiny_store.model_dir)
    products = [Product(**p) for p in tiny_store.products]  # type: ignore[arg-type]
    newcomer = Product(
        id="P0999",
        title="Glacier Insulated Snow Parka",
        brand="Glacier",
        category="outerwear",
        subcategory="parkas",
        price=120.0,
        description="A warm insulated parka for snow.",
        attributes=("insulated",),
        rating=4.8,
        review_count=3,
        stock=5,
        warranty_months=12,
    )
    service = ScoringService(model, [*products, newcomer], {}, lambda texts: encode(texts))
    found = service.recommend(
        RecommendationRequest(user_id="new", text="insulated snow parka", k=1)
    )
    assert [s.item_id for s in found] == ["P0999"]


def test_model_only_benchmark_scores_the_pool_a_request_gets(tiny_store: TinyStore) -> None:
    """`model_only_ms` times the model on what `recommend` hands it, never the whole catalog."""
    from workers.recommender.benchmark import _model_only

    model, _ = model_module.load_checkpoint(tiny_store.model_dir)
    products = [Product(**p) for p in tiny_store.products]  # type: ignore[arg-type]
    histories = load_histories(tiny_store.folder / "interactions.csv")
    small = ScoringService(model, products, histories, lambda texts: encode(texts),
                           ServiceConfig(candidates=12))
    requests = [RecommendationRequest(user_id="C0001", k=3),  # no text: the full pool of 12
                RecommendationRequest(user_id="C0002", text="rain jacket", k=3)]
    pools = [small.candidate_pool(request) for request in requests]
    assert [len(pool.items) for pool in pools if pool is not None] == [12, 10]
    figures = _model_only(small, requests)
    assert figures["candidates_median"] == 11 < len(products)
    assert 0 < figures["median"] <= figures["p95"]


def test_the_service_follows_the_stores_catalog(tiny_store: TinyStore, tmp_path: Path) -> None:
    """A price change and a new product reach the scoring of a running service: the new
    product, never seen in training, is suggested at once on its text (cold start)."""
    shutil.copy(tiny_store.folder / "store.sqlite3", tmp_path / "store.sqlite3")
    database = ShopDatabase(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    catalog = live_catalog(database, check_s=0)
    model, _ = model_module.load_checkpoint(tiny_store.model_dir)
    service = ScoringService(model, list(catalog.all()), store_histories(database),
                             lambda texts: encode(texts), catalog=catalog)
    ask = RecommendationRequest(user_id="stranger", text="inflatable kayak paddle", k=3)
    assert "K-1" not in [s.item_id for s in service.recommend(ask)]
    cheap = service.recommend(RecommendationRequest(user_id="C0001", budget_max=60.0, k=1))[0]
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": "K-1", "title": "Riverline Inflatable Kayak Paddle",
                               "category": "outdoor", "price": 40.0, "stock": 5,
                               "description": "A light paddle for an inflatable kayak."}) + "\n")
    import_store(database, {"catalog": new})
    with database.engine.begin() as connection:
        connection.execute(update(product_table).where(product_table.c.id == cheap.item_id)
                           .values(price=999.0))
    suggested = [s.item_id for s in service.recommend(ask)]
    assert suggested[0] == "K-1"
    again = service.recommend(RecommendationRequest(user_id="C0001", budget_max=60.0, k=5))
    assert cheap.item_id not in [s.item_id for s in again]  # now above the budget
    database.close()


def test_request_texts_are_encoded_safely_from_many_threads(service: ScoringService) -> None:
    """Turns run in several threads: a small query cache evicting under them must neither
    fail a request nor mix up two texts' embeddings."""
    small = dataclasses.replace(service.config, query_cache=2)
    original, service.config = service.config, small
    texts = [f"rain jacket size {n}" for n in range(12)]
    expected = {text: service._query(RecommendationRequest(user_id="u", text=text))
                for text in texts}
    failures: list[BaseException] = []

    def ask(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(80):
                text = rng.choice(texts)
                got = service._query(RecommendationRequest(user_id="u", text=text))
                assert got is not None and torch.allclose(got, expected[text])
        except BaseException as error:
            failures.append(error)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between any two steps, as under load
    try:
        threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
        service.config = original
    assert not failures, failures[0]


def test_precision_setting_chooses_the_request_text_encoder(
    tiny_store: TinyStore, tmp_path: Path
) -> None:
    """With CONCIERGE_ENCODER_PRECISION=int8 a request's text is encoded by the int8 encoder;
    the catalog's texts stay as the model was trained on them."""
    from core.infra.settings import Settings

    text = "waterproof rain jacket for hiking"
    ask = RecommendationRequest(user_id="stranger", text=text, k=3)
    queries = {}
    for precision in ("float", "int8"):
        settings = Settings(recommender_dir=tiny_store.model_dir, models_dir=tmp_path,
                            store_url=tiny_store.store_url, encoder_precision=precision)
        service = ScoringService.from_settings(settings)
        queries[precision] = service._query(ask)
        assert torch.equal(service._text, model_module.load_checkpoint(
            tiny_store.model_dir)[0].text)
        assert service.recommend(ask)
    assert torch.allclose(queries["float"], encode([text])[0], atol=1e-6)
    assert torch.allclose(queries["int8"], encode([text], precision="int8")[0], atol=1e-6)
    assert not torch.allclose(queries["float"], queries["int8"], atol=1e-3)


def test_with_learning_on_a_logged_slate_comes_from_the_models_best_candidates(
    tiny_store: TinyStore, tmp_path: Path
) -> None:
    from core.infra.settings import Settings
    from workers.recommender.bandit import STATE, BanditLearner

    copy = tmp_path / "store.sqlite3"
    shutil.copy(tiny_store.store_url.removeprefix("sqlite:///"), copy)
    settings = Settings(recommender_dir=tiny_store.model_dir, models_dir=tmp_path,
                        store_url=f"sqlite:///{copy}", bandit=True, bandit_exploration=0.5,
                        bandit_candidates=8, bandit_refresh_s=0.0)
    service = ScoringService.from_settings(settings)
    assert service.bandit is not None
    ranker, store = service.bandit, service.bandit.store
    ask = RecommendationRequest(user_id="C0001", text="boots for hiking", k=3)
    service.bandit = None
    best = [s.item_id for s in service.recommend(ask.model_copy(update={"k": 8}))]
    service.bandit = ranker
    shown = set()
    for _ in range(12):
        suggestions = service.recommend(ask)
        assert len(suggestions) == 3 and len({s.slate for s in suggestions}) == 1
        assert all(s.item_id in best and 0.0 < (s.propensity or 0.0) <= 1.0 for s in suggestions)
        assert all(service.matches_filters(service.product(s.item_id), ask)  # type: ignore[arg-type]
                   for s in suggestions)
        shown.update(s.item_id for s in suggestions)
    assert len(shown) > 3  # it explores among the best candidates
    logged = list(store.slates(closed_only=False))
    assert len(logged) == 12 and all(len(s.candidates) == 8 for s in logged)
    BanditLearner(store).close(suggestions[0].slate or "", 1, "details")
    assert (store.bandit_state(STATE) or {})["version"] == 1
