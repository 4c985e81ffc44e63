"""Interactions: what a customer did with a product besides ordering it (views, likes, button
feedback), as the recommender learns from them."""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class Interaction(BaseModel):
    """One event. `user_id` and `timestamp` (unix seconds) are accepted for `customer_id` and
    `at`, so a recommender's interactions file imports as it is; other columns are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)

    customer_id: str = Field(min_length=1, validation_alias=AliasChoices("customer_id", "user_id"))
    item_id: str = Field(min_length=1)
    kind: str = Field(default="purchase", min_length=1)  # the shop's word: view, like, purchase
    at: datetime = Field(validation_alias=AliasChoices("at", "timestamp"))
