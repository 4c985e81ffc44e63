"""The shop's services over the store database: what `core.turn` reads, kept current.

Orders and customers are read at the moment they are asked for (an order status is never
stale). The catalog and the help articles are held in memory and rebuilt when the database's
version counters move (`core.shop.live`), as is the slot vocabulary derived from the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from core.infra.errors import StoreNotReady
from core.infra.logs import event as log_event
from core.shop.catalog import JsonlCatalog
from core.shop.customers import Customer
from core.shop.files import Shop
from core.shop.interactions import Interaction
from core.shop.knowledge import Bm25KnowledgeBase
from core.shop.live import Live, LiveCatalog, LiveKnowledge
from core.shop.orders import Order
from core.shopdb.database import ShopDatabase
from core.shopdb.tables import CATALOG, KNOWLEDGE
from core.turn.slots import SlotVocabulary

log = logging.getLogger(__name__)


class SqlOrders:
    """`Orders` read from the database on every call."""

    def __init__(self, database: ShopDatabase) -> None:
        self._database = database

    def get(self, order_id: str) -> Order | None:
        return self._database.order(order_id)

    def for_customer(self, customer_id: str) -> Sequence[Order]:
        return self._database.orders_of(customer_id)


class SqlCustomers:
    """`Customers` read from the database on every call."""

    def __init__(self, database: ShopDatabase) -> None:
        self._database = database

    def get(self, customer_id: str) -> Customer | None:
        return self._database.customer(customer_id)


class StoreFeedbackLog:
    """Button feedback kept as interactions in the store database, for the next training.
    A failed write is logged and the turn goes on: feedback is worth less than an answer."""

    def __init__(self, database: ShopDatabase) -> None:
        self._database = database

    def record(self, user_id: str, item_id: str, kind: str, at: float) -> None:
        event = Interaction(customer_id=user_id, item_id=item_id, kind=kind,
                            at=datetime.fromtimestamp(at, UTC))
        try:
            self._database.record_interaction(event)
        except SQLAlchemyError as error:
            log_event(log, "store.feedback_not_recorded", level=logging.WARNING,
                      kind=kind, error=type(error).__name__)


def names_on_record(database: ShopDatabase) -> Callable[[str], tuple[str, ...]]:
    """`names_of(customer_id)` for masking: the name on the customer's record, () when the
    customer or the database cannot be read (masking then covers the other kinds only)."""

    def names_of(customer_id: str) -> tuple[str, ...]:
        try:
            customer = database.customer(customer_id)
        except SQLAlchemyError:
            return ()
        return (customer.name,) if customer is not None and customer.name.strip() else ()

    return names_of


def live_catalog(database: ShopDatabase, check_s: float = 1.0) -> LiveCatalog:
    return LiveCatalog(
        Live(
            "catalog",
            lambda: database.version(CATALOG),
            lambda: JsonlCatalog(database.products()),
            check_s,
        )
    )


def open_shop(database: ShopDatabase, check_s: float = 1.0) -> Shop:
    """The store's services; StoreNotReady (saying what to run) when it has no schema or no
    products yet."""
    database.check_ready()
    catalog = live_catalog(database, check_s)
    if not catalog.all():
        raise StoreNotReady(
            f"the store database {database.shown} has no products: import a store first "
            "(`concierge store import --demo` for the demo store)"
        )
    knowledge = LiveKnowledge(
        Live(
            "knowledge",
            lambda: database.version(KNOWLEDGE),
            lambda: Bm25KnowledgeBase(database.articles()),
            check_s,
        )
    )
    return Shop(
        catalog=catalog,
        orders=SqlOrders(database),
        customers=SqlCustomers(database),
        knowledge=knowledge,
    )


class ShopVocabulary:
    """The slot vocabulary of the catalog as it is now, with the shop's synonyms; rebuilt
    when the catalog (or a synonym) changed."""

    def __init__(self, catalog: LiveCatalog, database: ShopDatabase) -> None:
        self._catalog = catalog
        self._database = database
        self._built_from: JsonlCatalog | None = None
        self._vocabulary = SlotVocabulary()

    def current(self) -> SlotVocabulary:
        snapshot = self._catalog.snapshot()
        if snapshot is not self._built_from:
            self._vocabulary = SlotVocabulary.from_catalog(snapshot, self._database.synonyms())
            self._built_from = snapshot
        return self._vocabulary
