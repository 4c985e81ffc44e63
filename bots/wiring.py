"""The composition root: settings in, the services of a turn out.

Every process that runs turns (the terminal chat, the Telegram and Slack bots, the benchmarks)
builds them here, and this is the only module that chooses implementations, so it is the only
one in `bots/` that imports `workers/`. Each implementation is imported only when configured:
with `CONCIERGE_UNDERSTANDER=llm` and `CONCIERGE_RECOMMENDER=celery` a bot process imports no
torch (the local model, the LLM's fallback, is loaded the first time the LLM fails), and no
process imports training code or scikit-learn.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.activity.record import BufferedActivityLog
from core.handover.deliveries.factory import open_delivery_queue
from core.handover.deliveries.loop import Deliveries
from core.handover.escalation import SupportDesk
from core.handover.tickets.factory import open_ticket_store
from core.handover.tickets.store import TicketStore
from core.identity.accounts import AccountRules, Accounts
from core.identity.mail import Mailer, SmtpMailer
from core.identity.rights import DataRights, Retention, RetentionJob
from core.infra import logs, metrics
from core.infra.errors import StoreNotReady
from core.infra.ratelimit import open_rate_limiter
from core.infra.settings import Settings, settings_section
from core.shop.live import LiveCatalog
from core.shopdb.activity import SqlActivity
from core.shopdb.agents import SqlAgents
from core.shopdb.database import ShopDatabase
from core.shopdb.identity import SqlIdentities
from core.shopdb.services import (
    ShopVocabulary,
    SqlOrders,
    StoreFeedbackLog,
    live_catalog,
    names_on_record,
    open_shop,
)
from core.state.factory import open_state_store
from core.state.store import ConversationState, StateStore
from core.turn.conversation import Conversation, Services
from core.turn.explanation import Phraser
from core.turn.messages import Reply
from core.turn.policy import PolicyConfig
from core.turn.recommendation import MeasuredRecommender, Recommender, SlateOutcomes
from core.turn.slots import SlotVocabulary, VocabularySource
from core.turn.understanding import Understander, Understanding

if TYPE_CHECKING:
    from bots.web.app import Desk

log = logging.getLogger(__name__)


def configure_logging(settings: Settings, default_level: str | None = None) -> None:
    """Adapters log at the configured level; the terminal chat stays quiet unless asked."""
    fields_set = settings.model_fields_set
    level = (
        settings.log_level if default_level is None or "log_level" in fields_set else default_level
    )
    logs.configure(level, settings.log_format)


def open_store(settings: Settings) -> ShopDatabase:
    """The store database the settings name (not checked: `open_shop` does that)."""
    return ShopDatabase(settings.store_url.get_secret_value())


def slot_vocabulary(settings: Settings) -> VocabularySource:
    """Slot words from the store's catalog and synonyms, following changes; an empty
    vocabulary (generic slots only) when the store is not ready."""
    database = open_store(settings)
    try:
        database.check_ready()
    except StoreNotReady as error:
        log.warning("%s: slots without categories, attributes or products", error)
        return SlotVocabulary()
    return ShopVocabulary(live_catalog(database, settings.store_check_s), database)


class FirstUseUnderstander:
    """An understander built the first time it is asked, so a process whose LLM answers never
    loads the local model (nor imports torch)."""

    def __init__(self, build: Callable[[], Understander]) -> None:
        self._build = build
        self._built: Understander | None = None
        self._lock = threading.Lock()

    def understand(self, text: str, state: ConversationState) -> Understanding:
        with self._lock:
            if self._built is None:
                logs.event(log, "understand.local_model_loading")
                self._built = self._build()
        return self._built.understand(text, state)


def build_understander(
    settings: Settings,
    backend: str | None = None,
    vocabulary: VocabularySource | None = None,
    database: ShopDatabase | None = None,
) -> Understander:
    """The local model (embedded default), the LLM with the local model as its fallback, or the
    cascade of both; `backend` overrides `settings.understander`; `database` reuses an open
    store (for the customers' names the LLM must not see)."""
    backend = backend or settings.understander
    vocabulary = vocabulary if vocabulary is not None else slot_vocabulary(settings)

    def local() -> Understander:
        from workers.nlu.understander import LocalUnderstander

        return LocalUnderstander.load(
            settings.nlu_path,
            vocabulary,
            settings.nlu_threads,
            batch_max=settings.nlu_batch_max,
            batch_wait_s=settings.nlu_batch_wait_ms / 1000,
            precision=settings.encoder_precision,
        )

    if backend == "local":
        return local()
    from core.llm.client import LlmClient, LlmConfig
    from core.llm.understanders import CascadeUnderstander, LlmUnderstander
    from core.turn.taxonomy import load_taxonomy

    client = LlmClient(LlmConfig.from_settings(settings))
    metrics.watch_llm(client)  # calls and breaker state on /metrics
    taxonomy = load_taxonomy(settings.nlu_taxonomy)
    names_of = names_on_record(database or open_store(settings))  # masked before it leaves
    if backend == "llm":
        return LlmUnderstander(
            client, taxonomy, FirstUseUnderstander(local), vocabulary, names_of=names_of
        )
    first = local()
    return CascadeUnderstander(
        first,
        LlmUnderstander(client, taxonomy, first, vocabulary, names_of=names_of),
        settings.cascade_threshold,
    )


def build_recommender(settings: Settings, catalog: LiveCatalog | None = None) -> Recommender:
    """Celery workers (scaled: no torch in this process) or the same scoring in-process, over
    `catalog` when this process already follows the store's (else its own)."""
    if settings.recommender == "celery":
        from workers.client import CeleryRecommender

        metrics.watch_queues(settings.celery_broker_url, [settings.celery_queue])
        return MeasuredRecommender(CeleryRecommender(settings), "celery")
    from workers.recommender.service import ScoringService

    return MeasuredRecommender(
        ScoringService.from_settings(settings, catalog=catalog), "inprocess"
    )


def build_learner(settings: Settings, database: ShopDatabase) -> SlateOutcomes:
    """Where shown slates' outcomes update the bandit: a Celery job for scaled deployments
    (the bot process stays free of numpy and the model), else this process, in the store."""
    if settings.recommender == "celery":
        from workers.client import CeleryLearner

        return CeleryLearner(settings)
    from core.shopdb.learning import LearningStore
    from workers.recommender.bandit import BanditLearner

    return BanditLearner(LearningStore(database))


def bandit_controls(conversation: Conversation) -> Any:
    """`workers.recommender.lab.BanditControls` of the conversation's in-process scorer (for
    experiments); ValueError when it has no bandit."""
    from workers.recommender.lab import BanditControls

    service = getattr(conversation.services.recommender, "inner", None)
    if service is None or not hasattr(service, "bandit"):
        raise ValueError("the bandit can be controlled only with the in-process recommender")
    return BanditControls(service)


def build_policy(settings: Settings) -> PolicyConfig:
    """Escalation thresholds: each field from the setting prefixed `policy_`."""
    return settings_section(settings, "policy_", PolicyConfig)


def build_support_desk(settings: Settings, states: StateStore | None = None) -> SupportDesk:
    """The support desk over the configured storage; `states` reuses an open state store."""
    return SupportDesk(
        tickets=open_ticket_store(settings),
        queue=open_delivery_queue(settings),
        states=states or open_state_store(settings),
        sla_s=settings.escalation_sla_s,
        notify_agents=settings.support_channel is not None,  # the console reads tickets directly
        lock_timeout_s=settings.lock_timeout_s,
    )


def start_customer_deliveries(
    settings: Settings,
    conversation: Conversation,
    topic: str,
    send_reply: Callable[[str, Reply], None],
) -> Deliveries | None:
    """Deliver agents' replies to this adapter's customers in the background (None when off).

    `topic` is `customer_topic(platform, conversation_id)`: the platform name for a bot serving
    many chats, one per conversation for the terminal. The loop also runs the SLA sweep.
    `send_reply` runs on the loop's thread (`bots.channel.threadsafe` for async adapters).
    """
    start_retention(settings, conversation)  # every process serving customers purges
    desk = conversation.services.escalations
    if not isinstance(desk, SupportDesk):
        return None
    loop = Deliveries.to_customers(desk.queue, topic, send_reply, wait_s=settings.delivery_wait_s)
    loop.tick = desk.sweep
    loop.undelivered = desk.undelivered  # a reply given up on: the agents are told
    return loop.start()


def build_phraser(settings: Settings) -> Phraser | None:
    """An LLM phrasing explanations when configured; its sentences are checked, not trusted."""
    if settings.explanations != "llm":
        return None
    from core.llm.client import LlmClient, LlmConfig
    from core.llm.phraser import LlmPhraser

    return LlmPhraser(LlmClient(LlmConfig.from_settings(settings)))


def build_mailer(settings: Settings) -> Mailer | None:
    """SMTP for e-mail codes, when a host is configured."""
    if not settings.smtp_host:
        return None
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        user=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        security=settings.smtp_security,
        timeout_s=settings.smtp_timeout_s,
    )


def build_accounts(settings: Settings, database: ShopDatabase | None = None) -> Accounts:
    """Linked identities in the store database, with the configured proofs and limits."""
    secret = settings.link_secret.get_secret_value() if settings.link_secret else None
    rules = AccountRules(
        link_ttl_s=settings.link_ttl_s,
        code_ttl_s=settings.email_code_ttl_s,
        code_attempts=settings.email_code_attempts,
        attempts_per_hour=settings.verify_attempts_per_hour,
        codes_per_hour=settings.email_codes_per_hour,
    )
    identities = SqlIdentities(database or open_store(settings))
    return Accounts(identities, secret, build_mailer(settings), rules)


def build_data_rights(
    settings: Settings,
    accounts: Accounts,
    states: StateStore | None = None,
    tickets: TicketStore | None = None,
) -> DataRights:
    """Export, deletion and retention over every store that holds a person's data; `states`
    and `tickets` reuse stores already open."""
    return DataRights(
        states=states or open_state_store(settings),
        identities=accounts.store,
        tickets=tickets or open_ticket_store(settings),
        retention=Retention(settings.retention_transcript_days, settings.retention_ticket_days),
    )


def start_retention(settings: Settings, conversation: Conversation) -> RetentionJob | None:
    """The periodic purge of expired transcripts, tickets and proofs in this process."""
    rights = conversation.services.rights
    if rights is None:
        return None
    return RetentionJob(rights.purge, settings.retention_check_s).start()


def build_activity_log(database: ShopDatabase) -> BufferedActivityLog:
    """The dashboard's record of turns, written in the background; what is still buffered is
    written when the process exits."""
    activity = BufferedActivityLog(SqlActivity(database).write)
    atexit.register(activity.close_at_exit)
    return activity


def build_web_desk(settings: Settings) -> tuple[Desk, str]:
    """The web desk's services, and the key that signs its session cookies (the configured
    one, or one generated and kept in the store database for every desk process)."""
    from bots.web.app import Desk
    from bots.web.auth import SignIn
    from bots.web.dashboard import Dashboard
    from bots.web.live import LiveTickets

    database = open_store(settings)
    database.check_ready()
    support = build_support_desk(settings)
    agents = SqlAgents(database)
    desk = Desk(
        support=support,
        sign_in=SignIn(agents),
        dashboard=Dashboard(SqlActivity(database), support.tickets, settings.recommender_dir,
                            settings.dashboard_days),
        catalog=live_catalog(database, settings.store_check_s),
        orders=SqlOrders(database),
        live=LiveTickets(support.tickets, inbox_size=settings.web_page_size),
        sla_s=settings.escalation_sla_s,
        page_size=settings.web_page_size,
    )
    configured = settings.web_session_secret
    secret = (
        configured.get_secret_value() if configured
        else SqlIdentities(database).secret("web_session")
    )
    logs.keep_secrets({secret})  # a generated key is as secret as a configured one
    return desk, secret


def build_conversation(settings: Settings, keep_records: bool = True) -> Conversation:
    """Every service of a turn; StoreNotReady (saying what to run) when the store database
    has no schema or no products. `keep_records=False` (benchmarks) writes neither button
    presses nor the dashboard's activity into the store, and teaches the bandit nothing."""
    database = open_store(settings)
    shop = open_shop(database, settings.store_check_s)
    assert isinstance(shop.catalog, LiveCatalog)
    states = open_state_store(settings)
    accounts = build_accounts(settings, database)
    desk = build_support_desk(settings, states) if settings.escalation == "on" else None
    services = Services(
        store=states,
        understander=build_understander(
            settings, vocabulary=ShopVocabulary(shop.catalog, database), database=database
        ),
        recommender=build_recommender(settings, shop.catalog),
        catalog=shop.catalog,
        orders=shop.orders,
        knowledge=shop.knowledge,
        escalations=desk,
        phraser=build_phraser(settings),
        feedback_log=StoreFeedbackLog(database) if keep_records else None,
        activity=build_activity_log(database) if keep_records else None,
        accounts=accounts,
        rights=build_data_rights(settings, accounts, states, desk.tickets if desk else None),
        rate_limiter=open_rate_limiter(settings),  # in Redis with the state: one across processes
        slates=build_learner(settings, database) if settings.bandit and keep_records else None,
    )
    return Conversation(services, build_policy(settings), lock_timeout_s=settings.lock_timeout_s,
                        store_wait_s=settings.store_wait_s)
