"""Wiring: build the conversation core from settings. Every adapter's main() calls this.

Implementations are imported only when configured, so a bot process that scores through
Celery workers never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

from core.infra import logs, metrics
from core.turn.conversation import Conversation, Services
from core.handover.deliveries.store import Deliveries, DeliveryQueue
from core.shop.demo.generator import load_store
from core.handover.escalation import SupportDesk
from core.turn.explanation import Phraser
from core.turn.messages import Reply
from core.turn.policy import PolicyConfig
from core.turn.recommendation import Recommender
from core.infra.settings import Settings
from core.state.store import StateStore
from core.handover.tickets.store import TicketStore
from core.turn.understanding import Understander


def configure_logging(settings: Settings, default_level: str | None = None) -> None:
    """Adapters log at the configured level; the terminal chat stays quiet unless asked."""
    fields_set = settings.model_fields_set
    level = (
        settings.log_level if default_level is None or "log_level" in fields_set else default_level
    )
    logs.configure(level, settings.log_format)


def build_store(settings: Settings) -> StateStore:
    if settings.state_backend == "redis":
        from core.state.redis import RedisStateStore

        return RedisStateStore(settings.redis_url, settings.redis_prefix)
    from core.state.sqlite import SqliteStateStore

    return SqliteStateStore(settings.sqlite_path)


def build_understander(settings: Settings) -> Understander:
    """The local model (embedded default), the LLM, or the cascade of both."""
    from core.llm.understanders import CascadeUnderstander, LlmUnderstander
    from workers.nlu.cli import build_understander as build
    from workers.nlu.cli import load_vocabulary

    understander = build(settings.understander, settings, load_vocabulary(settings))
    llm = understander.llm if isinstance(understander, CascadeUnderstander) else understander
    if isinstance(llm, LlmUnderstander):
        metrics.watch_llm(llm.client)  # calls and breaker state on /metrics
    return understander


def build_recommender(settings: Settings) -> Recommender:
    """Celery workers (scaled: no torch in this process) or the same scoring in-process."""
    if settings.recommender == "celery":
        from workers.client import CeleryRecommender

        metrics.watch_queues(settings.celery_broker_url, [settings.celery_queue])
        return metrics.MeasuredRecommender(CeleryRecommender(settings), "celery")
    from workers.recommender.service import ScoringService

    return metrics.MeasuredRecommender(ScoringService.from_settings(settings), "inprocess")


def build_policy(settings: Settings) -> PolicyConfig:
    return PolicyConfig(
        negative_window=settings.policy_negative_window,
        negative_needed=settings.policy_negative_needed,
        worsening_turns=settings.policy_worsening_turns,
        low_confidence=settings.policy_low_confidence,
        low_confidence_turns=settings.policy_low_confidence_turns,
        not_for_me_turns=settings.policy_not_for_me_turns,
        complaint_window=settings.policy_complaint_window,
        complaints_needed=settings.policy_complaints_needed,
    )


def build_deliveries_queue(settings: Settings) -> DeliveryQueue:
    if settings.state_backend == "redis":
        from core.handover.deliveries.store import RedisDeliveryQueue

        return RedisDeliveryQueue(
            settings.redis_url, settings.redis_prefix, lease_s=settings.delivery_lease_s
        )
    from core.handover.deliveries.store import SqliteDeliveryQueue

    return SqliteDeliveryQueue(
        settings.sqlite_path, lease_s=settings.delivery_lease_s, poll_s=settings.delivery_poll_s
    )


def build_desk(settings: Settings, states: StateStore | None = None) -> SupportDesk:
    """The support desk over the configured storage; `states` reuses an open state store."""
    tickets: TicketStore
    if settings.state_backend == "redis":
        from core.handover.tickets.store import RedisTicketStore

        tickets = RedisTicketStore(settings.redis_url, settings.redis_prefix)
    else:
        from core.handover.tickets.store import SqliteTicketStore

        tickets = SqliteTicketStore(settings.sqlite_path)
    return SupportDesk(
        tickets=tickets,
        queue=build_deliveries_queue(settings),
        states=states or build_store(settings),
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
    """Deliver agent replies to this adapter's customers in the background (None when off).

    `topic` is `core.handover.deliveries.store.customer_topic(platform, conversation_id)`: the platform name
    for a bot serving many chats, one per conversation for the terminal. The loop also runs the
    SLA sweep. `send_reply` runs on the loop's thread.
    """
    desk = conversation.services.escalations
    if not isinstance(desk, SupportDesk):
        return None
    loop = Deliveries.to_customers(desk.queue, topic, send_reply, wait_s=settings.delivery_wait_s)
    loop.tick = desk.sweep
    return loop.start()


def build_phraser(settings: Settings) -> Phraser | None:
    """An LLM phrasing explanations when configured; its sentences are checked, not trusted."""
    if settings.explanations != "llm":
        return None
    from core.turn.explanation import LlmPhraser
    from core.llm.client import LlmClient, LlmConfig

    return LlmPhraser(LlmClient(LlmConfig.from_settings(settings)))


def build_conversation(settings: Settings) -> Conversation:
    store = load_store(settings.demo_dir)
    states = build_store(settings)
    services = Services(
        store=states,
        understander=build_understander(settings),
        recommender=build_recommender(settings),
        catalog=store.catalog,
        orders=store.orders,
        knowledge=store.knowledge,
        escalations=build_desk(settings, states) if settings.escalation == "on" else None,
        phraser=build_phraser(settings),
    )
    return Conversation(services, build_policy(settings), lock_timeout_s=settings.lock_timeout_s)
