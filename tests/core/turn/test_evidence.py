"""Evidence states only facts that the product record and the request bear out."""

from __future__ import annotations

from core.shop.catalog import Product
from core.turn.evidence import gather, request_terms, resembles, singular
from core.turn.recommendation import RecommendationRequest


def _product(**overrides: object) -> Product:
    values: dict[str, object] = {
        "id": "P0001",
        "title": "Alpenglow Echo Rain Jacket",
        "brand": "Alpenglow",
        "category": "outerwear",
        "subcategory": "rain-jackets",
        "price": 66.99,
        "colors": ("navy", "sand"),
        "description": "Taped seams keep water out on trails.",
        "attributes": ("packable", "waterproof"),
        "rating": 4.5,
        "review_count": 25,
        "stock": 3,
        "materials": "recycled nylon",
        "warranty_months": 24,
    }
    return Product(**(values | overrides))  # type: ignore[arg-type]


def test_matched_terms_and_attributes_are_in_the_product() -> None:
    product = _product()
    request = RecommendationRequest(
        user_id="u",
        text="a waterproof jacket for trails with pockets",
        attributes=("waterproof", "insulated"),
        colors=("navy", "red"),
        budget_max=80,
    )
    evidence = gather(product, request)
    assert evidence.matched_terms == ("waterproof", "jacket", "trails")
    assert "pockets" not in evidence.matched_terms  # not said anywhere in the record
    assert evidence.matched_attributes == ("waterproof", "navy")
    assert evidence.price == 66.99 and evidence.budget_max == 80
    assert evidence.rating == 4.5 and evidence.review_count == 25
    assert evidence.in_stock


def test_category_match_uses_category_or_subcategory() -> None:
    product = _product()
    assert gather(product, RecommendationRequest(user_id="u", category="Outerwear")).category_match
    assert gather(
        product, RecommendationRequest(user_id="u", category="rain-jackets")
    ).category_match
    assert not gather(
        product, RecommendationRequest(user_id="u", category="footwear")
    ).category_match
    assert not gather(product, RecommendationRequest(user_id="u")).category_match


def test_similar_history_lists_only_resembling_past_items() -> None:
    product = _product()
    same_sub = _product(id="P0002", title="Stormline Vista Rain Shell")
    same_cat_shared_word = _product(
        id="P0003", title="Northfield Down Jacket", subcategory="insulated-jackets"
    )
    unrelated = _product(
        id="P0004", title="Cast Iron Skillet", category="kitchen", subcategory="cookware"
    )
    evidence = gather(
        product,
        RecommendationRequest(user_id="u"),
        history=[unrelated, same_cat_shared_word, same_sub, product],
    )
    # Most recent first, at most two, never the product itself.
    assert evidence.similar_history == ("Stormline Vista Rain Shell", "Northfield Down Jacket")
    assert not resembles(product, unrelated)


def test_similar_to_names_the_liked_item_but_not_itself() -> None:
    product = _product()
    liked = _product(id="P0009", title="Stormline Vista Rain Shell")
    request = RecommendationRequest(user_id="u", like_item_id="P0009")
    assert gather(product, request, like=liked).similar_to == "Stormline Vista Rain Shell"
    assert gather(product, request, like=product).similar_to is None


def test_out_of_stock_is_reported() -> None:
    assert not gather(_product(stock=0), RecommendationRequest(user_id="u")).in_stock


def test_request_terms_drop_filler_and_numbers() -> None:
    terms = request_terms("I need a gift for my dad who hikes, under 100 dollars")
    assert terms == ("dad", "hikes")
    assert singular("boots") == "boot" and singular("batteries") == "battery"
    assert singular("glass") == "glass"
