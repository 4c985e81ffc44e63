"""Wording built from records: a product with only the required fields still reads well."""

from __future__ import annotations

from core.shop.catalog import Product
from core.turn import replies


def test_details_of_a_product_with_only_id_title_and_price() -> None:
    product = Product(id="b004756yja", title="Nail Lacquer", price=8.5, stock=3)
    text = replies.product_details(product)
    assert text == "Nail Lacquer — $8.50\nOnly 3 left in stock."
    assert replies.product_answer(product, "what is it made of?") == (
        "Nail Lacquer: the listing gives no materials."
    )


def test_details_with_rating_and_brand() -> None:
    product = Product(
        id="P0001", title="Rain Jacket", brand="Alpenglow", price=66.99, description="Dry.",
        rating=4.5, review_count=25, stock=40,
    )
    assert replies.product_details(product).splitlines() == [
        "Rain Jacket by Alpenglow — $66.99",
        "Dry.",
        "Rated 4.5/5 from 25 reviews. In stock.",
    ]
