"""One turn of a conversation: load state, understand, decide, act, save, reply.

`Conversation.handle` is the single entry point for every platform. Turns of one conversation
run one at a time (the store's lock); different conversations run concurrently.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

from core.activity.record import ActivityLog, TurnActivity, day_of
from core.handover.escalation import Escalations
from core.identity.accounts import Accounts
from core.identity.rights import DataRights
from core.infra import metrics
from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.infra.ratelimit import RATE_LIMITED, RateLimiter
from core.shop.catalog import Catalog, Product
from core.shop.knowledge import KnowledgeBase
from core.shop.orders import Order, Orders
from core.state.store import (
    ANSWERED_LIMIT,
    SEEN_MESSAGES_LIMIT,
    SENTIMENT_LIMIT,
    AnsweredMessage,
    ConversationState,
    EscalationState,
    FeedbackEvent,
    KeptReply,
    LockLost,
    LockTimeout,
    ProductRequest,
    ShownItem,
    StateStore,
    Turn,
)
from core.turn import replies
from core.turn.account import AccountDesk, AccountTurn
from core.turn.explanation import FactVocabulary, Phraser, explain
from core.turn.messages import MAX_TEXT_CHARS, Button, Incoming, Outbox, Reply
from core.turn.policy import Action, Decision, PolicyConfig, decide
from core.turn.recommendation import (
    Evidence,
    FeedbackLog,
    RecommendationRequest,
    Recommender,
    RecommenderUnavailable,
    SlateOutcomes,
    Suggestion,
)
from core.turn.understanding import Intent, Understander, Understanding

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e]")
_SPACES = re.compile(r"[ \t]+")
SUGGESTIONS_SHOWN = 3
NEAREST_POOL = 12  # candidates looked at for the nearest alternatives when nothing fits
STORE_FIRST_PAUSE_S = 0.2  # pauses between tries while the state store cannot be reached
STORE_MAX_PAUSE_S = 2.0


class _StoreNotReached(StoreUnavailable):
    """The store did not answer before the turn began: nothing ran, so trying again is safe."""


@dataclass(frozen=True)
class Services:
    """Everything a turn may call, each behind its protocol."""

    store: StateStore
    understander: Understander
    recommender: Recommender
    catalog: Catalog
    orders: Orders
    knowledge: KnowledgeBase
    escalations: Escalations | None = None
    phraser: Phraser | None = None  # an LLM phrasing explanations; checked against evidence
    feedback_log: FeedbackLog | None = None  # button presses kept for the next training
    accounts: Accounts | None = None  # linked identities: who may see which orders
    rights: DataRights | None = None  # "delete my data"
    rate_limiter: RateLimiter | None = None  # per-sender flood limit, asked before anything
    activity: ActivityLog | None = None  # what each turn did, in counts, for the dashboard
    slates: SlateOutcomes | None = None  # shown slates' outcomes, for the learning re-ranker


@dataclass(frozen=True)
class Outcome:
    """What acting on a decision produced: replies plus the state changes to apply."""

    replies: tuple[Reply, ...]
    request: ProductRequest | None = None
    shown: tuple[ShownItem, ...] | None = None
    feedback: FeedbackEvent | None = None
    escalation: EscalationState | None = None
    order_to_verify: str | None = None  # an order asked for without proof of who is asking
    slate: str | None = None  # the logged slate of the suggestions shown, when one was logged


@dataclass(frozen=True)
class TurnSummary:
    conversation_id: str
    intent: str
    decision: str
    source: str
    ms: float


def clean_text(text: str) -> tuple[str, bool]:
    """Text without control characters and runs of spaces, and whether it was truncated."""
    cleaned = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(cleaned) > MAX_TEXT_CHARS:
        return cleaned[:MAX_TEXT_CHARS], True
    return cleaned, False


@dataclass
class Conversation:
    services: Services
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    lock_timeout_s: float = 30.0
    store_wait_s: float = 10.0  # a store unreachable before a turn began is tried this long
    clock: Callable[[], float] = time.time
    last_turn: TurnSummary | None = field(default=None, init=False)
    # Catalog words a phrasing could wrongly name, and the products they were taken from.
    _vocabulary: FactVocabulary | None = field(default=None, init=False, repr=False)
    _vocabulary_of: object = field(default=None, init=False, repr=False)
    _account: AccountDesk | None = field(default=None, init=False, repr=False)

    @property
    def account(self) -> AccountDesk:
        if self._account is None:
            s = self.services
            self._account = AccountDesk(s.accounts, s.rights, s.orders, self.clock)
        return self._account

    def _refused(self, incoming: Incoming, outbox: Outbox, started: float) -> bool:
        """Whether the sender's rate limit refuses this message. Asked before the lock, the
        model and the agents, so a flood costs a dict lookup or one Redis round trip a message;
        only the first refusal of a limited stretch is answered, and nothing of it is kept."""
        limiter = self.services.rate_limiter
        if limiter is None:
            return False
        button = incoming.button is not None
        admission = limiter.admit(incoming.user_id or incoming.conversation_id, button)
        if admission.allowed:
            return False
        if admission.notify:
            outbox.send(_addressed(Reply(replies.TOO_FAST, thread_id=incoming.thread_id),
                                   incoming))
        ms = round((time.perf_counter() - started) * 1000, 1)
        self.last_turn = TurnSummary(incoming.conversation_id, "-", RATE_LIMITED, "-", ms)
        event(log, "turn.done", logging.WARNING if admission.notify else logging.INFO,
              conversation=incoming.conversation_id, platform=incoming.platform,
              decision=RATE_LIMITED, button=button, notice=admission.notify, ms=ms)
        metrics.record_rate_limited(incoming.platform, button, admission.notify)
        metrics.record_turn(incoming.platform, "-", RATE_LIMITED, ms / 1000)
        return True

    def handle(self, incoming: Incoming, outbox: Outbox) -> None:
        """Run one turn and send its replies to `outbox`.

        Raises LockTimeout when the conversation stayed busy (another turn held its lock) for
        `lock_timeout_s`: nothing ran and nothing was said, so the caller keeps the message and
        tries again later; it is never dropped with a "one moment"."""
        started = time.perf_counter()
        if self._refused(incoming, outbox, started):
            return
        text, truncated = clean_text(incoming.text)
        if not text and incoming.button is None:
            outbox.send(Reply(replies.EMPTY_MESSAGE, thread_id=incoming.thread_id))
            return
        intent, action, source = "-", "-", "-"
        try:
            turn = self._turn_when_store_answers(incoming, text)
            if turn is None:
                return
            out, intent, action, source = turn
        except StoreUnavailable as exc:
            event(
                log,
                "turn.store_unavailable",
                logging.ERROR,
                conversation=incoming.conversation_id,
                error=str(exc),
            )
            out, action = [Reply(replies.STORE_DOWN)], "store_unavailable"
        except LockLost:
            # The turn outlived its lock and another writer (a later turn, an agent's hand-over)
            # took it: nothing of this turn was saved, so that writer's change stands.
            event(log, "turn.lock_lost", logging.ERROR, conversation=incoming.conversation_id)
            out, action = [Reply(replies.INTERNAL_ERROR)], "lock_lost"
        except LockTimeout:
            event(log, "turn.busy", logging.WARNING, conversation=incoming.conversation_id)
            raise
        except Exception:
            # Nothing was saved: the state stays as it was before this turn.
            log.exception(
                "turn.failed", extra={"fields": {"conversation": incoming.conversation_id}}
            )
            out, action = [Reply(replies.INTERNAL_ERROR)], "error"
        if truncated and out:
            notice = replies.TRUNCATED.format(limit=MAX_TEXT_CHARS)
            out[0] = replace(out[0], text=f"{notice}\n{out[0].text}")
        for reply in out:
            outbox.send(_addressed(reply, incoming))
        ms = round((time.perf_counter() - started) * 1000, 1)
        self.last_turn = TurnSummary(incoming.conversation_id, str(intent), str(action), source, ms)
        event(
            log,
            "turn.done",
            conversation=incoming.conversation_id,
            platform=incoming.platform,
            intent=intent,
            decision=action,
            source=source,
            ms=ms,
        )
        metrics.record_turn(incoming.platform, str(intent), str(action), ms / 1000)

    def _turn_when_store_answers(
        self, incoming: Incoming, text: str
    ) -> tuple[list[Reply], str, str, str] | None:
        """The turn under the conversation's lock. A store that cannot be reached for the lock
        (nothing of the turn has run) is tried again for `store_wait_s`: a restart or a
        fail-over costs the customer a wait, not a resend. Then StoreUnavailable."""
        deadline = time.monotonic() + self.store_wait_s
        pause = STORE_FIRST_PAUSE_S
        while True:
            try:
                with ExitStack() as held:
                    try:
                        held.enter_context(
                            self.services.store.lock(incoming.conversation_id, self.lock_timeout_s)
                        )
                    except StoreUnavailable as exc:
                        raise _StoreNotReached(str(exc)) from exc
                    return self._locked_turn(incoming, text)
            except _StoreNotReached as exc:
                if time.monotonic() + pause > deadline:
                    raise
                event(log, "turn.store_wait", logging.WARNING,
                      conversation=incoming.conversation_id, retry_in_s=pause, error=str(exc))
                time.sleep(pause)
                pause = min(pause * 2, STORE_MAX_PAUSE_S)

    def _locked_turn(
        self, incoming: Incoming, text: str
    ) -> tuple[list[Reply], str, str, str] | None:
        """The turn, holding the conversation's lock: its replies, intent, decision and source;
        None for a duplicate delivery.

        A message already handled comes back with the replies its turn gave (when still kept):
        an adapter replays a message whose replies may not have gone out (its process died
        between the save and the send); the adapter knows whether they were sent."""
        state = self.services.store.load(incoming.conversation_id)
        if incoming.message_id and incoming.message_id in state.seen_message_ids:
            kept = next(
                (a for a in state.answered if a.message_id == incoming.message_id), None
            )
            event(log, "turn.duplicate", conversation=incoming.conversation_id,
                  message_id=incoming.message_id, replies_kept=kept is not None)
            if kept is None:
                return None
            return [_restored(reply) for reply in kept.replies], "-", "replayed", "replay"
        # Who is writing is looked up every turn: an unlink elsewhere applies at once.
        customer = incoming.customer_id or self.account.customer_of(incoming.user_id)
        state = state.model_copy(
            update={"user_id": state.user_id or incoming.user_id, "customer_id": customer}
        )
        account = self.account.handle(text, incoming.button, state)
        if account is not None:
            self._account_turn(account, incoming)
            return list(account.replies), "account", "account", "account"
        understanding = self._understand(text, state, incoming)
        decision = decide(state, understanding, incoming.button, self.policy)
        outcome = self._act(decision, state, incoming, text, understanding)
        new_state = advance(
            state, incoming, text, understanding, outcome, self.clock(), self.policy.low_confidence
        )
        self.services.store.save(new_state)
        if state.open_slate and self.services.slates is not None:
            self.services.slates.close(state.open_slate, *self._slate_outcome(state, outcome))
        if self.services.activity is not None:
            self.services.activity.record(
                _activity(state, incoming, understanding, decision, outcome, self.clock())
            )
        return list(outcome.replies), understanding.intent, decision.action, understanding.source

    def _slate_outcome(
        self, state: ConversationState, outcome: Outcome
    ) -> tuple[int | None, str | None]:
        """How the latest slate did: a purchase in the store of one of its items since it was
        shown (a verified customer's orders) counts over any press; else what was pressed."""
        position, kind = _pressed(state, outcome)
        if state.customer_id:
            try:
                bought = _bought(state, self.services.orders.for_customer(state.customer_id))
            except Exception as error:  # a store hiccup costs the signal, not the turn
                event(log, "slate.orders_unread", logging.WARNING, error=type(error).__name__)
                bought = None
            if bought is not None:
                return bought, "purchase"
        return position, kind

    def _account_turn(self, account: AccountTurn, incoming: Incoming) -> None:
        store = self.services.store
        if account.forgotten:  # the person's data is gone: keep nothing of this turn either
            store.delete(incoming.conversation_id)
            return
        understood = Understanding(intent=Intent.ACCOUNT, source="account")
        store.save(advance(account.state, incoming, account.said, understood,
                           Outcome(account.replies), self.clock(), self.policy.low_confidence))

    def _understand(self, text: str, state: ConversationState, incoming: Incoming) -> Understanding:
        if incoming.button is not None:
            return Understanding(intent=Intent.OTHER, source="button")
        return self.services.understander.understand(text, state)

    # -- acting on decisions ----------------------------------------------------------------

    def _act(
        self,
        decision: Decision,
        state: ConversationState,
        incoming: Incoming,
        text: str,
        understanding: Understanding,
    ) -> Outcome:
        s = self.services
        thread = incoming.thread_id
        match decision.action:
            case Action.REFINE if decision.item_id and decision.request and (
                decision.request.colors
            ):
                return self._in_colour(state, decision.item_id, decision.request, thread)
            case Action.RECOMMEND | Action.REFINE:
                assert decision.request is not None
                fresh = decision.action is Action.RECOMMEND  # the request is all this message
                return self._recommend(
                    state, decision.request, thread, refine=not fresh,
                    vector=understanding.sentence_vector if fresh else None,
                )
            case Action.FEEDBACK:
                return self._feedback(state, decision, thread)
            case Action.PRODUCT_QUESTION:
                product = s.catalog.get(decision.item_id or "")
                if product is None:
                    return _say(replies.UNKNOWN_BUTTON, thread)
                return _say(replies.product_answer(product, text), thread)
            case Action.ORDER_STATUS:
                reply, waiting = self.account.order_reply(state, decision.order_id)
                return Outcome((replace(reply, thread_id=thread),), order_to_verify=waiting)
            case Action.POLICY_ANSWER:
                answer = s.knowledge.answer(text, decision.topic)
                return _say(
                    replies.policy_answer(answer) if answer else replies.NO_POLICY_ANSWER, thread
                )
            case Action.ESCALATE:
                if s.escalations is None:
                    return _say(replies.NO_AGENTS, thread)
                ticket = s.escalations.open(state, decision.reason, text, understanding)
                return Outcome(
                    (Reply(replies.ESCALATED, thread_id=thread),),
                    escalation=EscalationState(
                        status="open", ticket_id=ticket, reason=decision.reason
                    ),
                )
            case Action.RELAY:
                if s.escalations is None:  # hand-over switched off meanwhile: never go silent
                    return Outcome(
                        (Reply(replies.NO_AGENTS, thread_id=thread),), escalation=EscalationState()
                    )
                s.escalations.relay(state, _said(incoming, text))
                return Outcome(())
            case Action.RATE:
                if s.escalations is not None and decision.rating is not None:
                    s.escalations.rate(state, decision.rating)
                return Outcome(
                    (Reply(replies.RATED, thread_id=thread),), escalation=EscalationState()
                )
            case Action.OPEN_REQUEST:
                assert decision.request is not None
                return self._open_request(state, decision.request, thread)
            case Action.CLARIFY:
                return _say(decision.question or replies.HELP, thread)
            case Action.SMALL_TALK:
                return _say(_small_talk(decision.topic, text), thread)
            case Action.UNKNOWN_BUTTON:
                return _say(replies.UNKNOWN_BUTTON, thread)
            case _:
                return _say(replies.OUT_OF_SCOPE, thread)

    def _explain(self, suggestion: Suggestion) -> str:
        phraser = self.services.phraser
        if phraser is None:
            return explain(suggestion)
        catalog = self.services.catalog
        products = catalog.all()  # a new sequence whenever the shop changed its catalog
        if self._vocabulary is None or products is not self._vocabulary_of:
            self._vocabulary = FactVocabulary.of(
                (*catalog.attributes(), *catalog.colors()), (p.title for p in products)
            )
            self._vocabulary_of = products
        return explain(suggestion, phraser, self._vocabulary)

    def _recommend(
        self,
        state: ConversationState,
        request: ProductRequest,
        thread: str | None,
        refine: bool = False,
        heading: str | None = None,
        unseen: bool = False,
        vector: str | None = None,
    ) -> Outcome:
        """`refine` leaves out what was just shown; `unseen` all this conversation showed;
        `vector`: the message's sentence vector, for a request made of that message alone."""
        rejected = tuple(f.item_id for f in state.feedback if f.kind == "not_for_me")
        shown_now = state.shown if unseen else tuple(item.item_id for item in state.last_shown)
        exclude = (*rejected, *shown_now) if refine or request.like_item_id else rejected
        ask = RecommendationRequest(
            user_id=state.customer_id or state.user_id,  # a verified customer's history
            exclude=tuple(dict.fromkeys(exclude)),
            k=SUGGESTIONS_SHOWN,
            text_vector=vector,
            **request.model_dump(exclude={"sizes"}),  # what the customer asked for, as it stands
        )
        try:
            suggestions: Sequence[Suggestion] = self.services.recommender.recommend(ask)
        except RecommenderUnavailable as exc:
            event(
                log,
                "recommend.unavailable",
                logging.ERROR,
                conversation=state.conversation_id,
                error=str(exc),
            )
            return Outcome((Reply(replies.RECOMMENDER_DOWN, thread_id=thread),), request=request)
        if not suggestions:
            return self._nearest(ask, request, thread)
        suggestions = list(suggestions)[:SUGGESTIONS_SHOWN]
        heading = heading or replies.ideas_heading(request)
        shown = tuple(
            ShownItem(item_id=s.item_id, title=s.title, price=s.price, position=i)
            for i, s in enumerate(suggestions, start=1)
        )
        reply = replies.suggestions_reply(suggestions, heading, thread, self._explain)
        return Outcome((reply,), request=request, shown=shown, slate=suggestions[0].slate)

    def _nearest(
        self, ask: RecommendationRequest, request: ProductRequest, thread: str | None
    ) -> Outcome:
        """Nothing meets every constraint: the closest products without the budget and the
        attributes, fewest misses first, each saying what it misses. The request stays as the
        customer put it, so "something cheaper" next goes on from it."""
        relaxed = ask.model_copy(update={
            "budget_min": None, "budget_max": None, "attributes": (), "k": NEAREST_POOL,
        })
        strict = bool(request.attributes or request.budget_max is not None
                      or request.budget_min is not None)
        try:
            pool = self.services.recommender.recommend(relaxed) if strict else []
        except RecommenderUnavailable:
            pool = []
        ranked = []
        for order, suggestion in enumerate(pool):
            product = self.services.catalog.get(suggestion.item_id)
            if product is not None:
                misses = replies.misses(product, request)
                ranked.append((_distance(product, request), order, suggestion, misses))
        ranked.sort(key=lambda entry: entry[:2])
        nearest = ranked[:SUGGESTIONS_SHOWN]
        if not nearest:
            return Outcome((Reply(replies.nothing_found(request), thread_id=thread),),
                           request=request, shown=())
        notes = {suggestion.item_id: misses for _, _, suggestion, misses in nearest}

        def explained(suggestion: Suggestion) -> str:
            return replies.with_misses(notes[suggestion.item_id], self._explain(suggestion))

        suggestions = [suggestion for _, _, suggestion, _ in nearest]
        reply = replies.suggestions_reply(
            suggestions, replies.nearest_heading(request), thread, explained
        )
        shown = tuple(
            ShownItem(item_id=s.item_id, title=s.title, price=s.price, position=i)
            for i, s in enumerate(suggestions, start=1)
        )
        return Outcome((reply,), request=request, shown=shown)

    def _open_request(
        self, state: ConversationState, request: ProductRequest, thread: str | None
    ) -> Outcome:
        """Suggestions with no product words: from a verified customer's orders, else what
        sells most, with one question to narrow it down."""
        customer = state.customer_id
        known = customer is not None and bool(self.services.orders.for_customer(customer))
        heading = replies.FOR_YOU_HEADING if known else replies.POPULAR_HEADING
        # Asked again ("surprise me" twice): things not shown yet.
        outcome = self._recommend(state, request, thread, refine=True, heading=heading,
                                  unseen=True)
        if known or not outcome.shown:
            return outcome
        question = Reply(replies.OPEN_QUESTION, thread_id=thread)
        return replace(outcome, replies=(*outcome.replies, question))

    def _in_colour(
        self, state: ConversationState, item_id: str, request: ProductRequest, thread: str | None
    ) -> Outcome:
        """ "The second one in black?": yes with that item, or similar items in that colour."""
        product = self.services.catalog.get(item_id)
        if product is None:
            return self._recommend(state, request, thread, refine=True)
        colours = [c for c in request.colors if c in product.colors]
        if colours:
            suggestion = Suggestion(
                item_id=product.id,
                title=product.title,
                price=product.price,
                score=1.0,
                evidence=Evidence(
                    price=product.price,
                    rating=product.rating,
                    review_count=product.review_count,
                    in_stock=product.in_stock,
                ),
            )
            heading = replies.comes_in_heading(product.title, colours)
            reply = replies.suggestions_reply([suggestion], heading, thread, self._explain)
            shown = (ShownItem(item_id=product.id, title=product.title, price=product.price,
                               position=1),)
            return Outcome((reply,), request=request, shown=shown)
        heading = replies.similar_in_colour(product, request.colors)
        outcome = self._recommend(state, request, thread, refine=True, heading=heading)
        if outcome.shown is None:  # nothing similar either: say both things
            text = f"{replies.not_in_colour(product, request.colors)}. {outcome.replies[0].text}"
            return Outcome((Reply(text, thread_id=thread),), request=request)
        return outcome

    def _feedback(
        self, state: ConversationState, decision: Decision, thread: str | None
    ) -> Outcome:
        assert decision.item_id is not None and decision.feedback is not None
        product = self.services.catalog.get(decision.item_id)
        title = product.title if product else "that item"
        record = FeedbackEvent(
            item_id=decision.item_id,
            kind=decision.feedback,  # type: ignore[arg-type]
            position=decision.position or 0,
            at=self.clock(),
        )
        metrics.record_feedback(decision.feedback)
        who = state.customer_id or state.user_id
        if self.services.feedback_log is not None and who:
            self.services.feedback_log.record(who, record.item_id, record.kind, record.at)
        if decision.feedback == "details":
            text = replies.product_details(product) if product else replies.UNKNOWN_BUTTON
            return Outcome((Reply(text, thread_id=thread),), feedback=record)
        if decision.feedback == "more_like_this":
            request = state.request.model_copy(update={"like_item_id": decision.item_id})
            heading = replies.more_like_heading(title)
            outcome = self._recommend(state, request, thread, heading=heading)
        else:
            rejected = state.model_copy(update={"feedback": (*state.feedback, record)})
            outcome = self._recommend(
                rejected,
                state.request,
                thread,
                refine=True,
                heading=replies.rejected_heading(title),
            )
        return replace(outcome, feedback=record)


def _distance(product: Product, request: ProductRequest) -> float:
    """How far a product is from what was asked: one per attribute it lacks, and for a price
    outside the budget one plus four times the fraction it is out by (10% over costs 1.4, so
    a coat at three times the budget comes after two missing attributes)."""
    lacking = sum(attribute not in product.attributes for attribute in request.attributes)
    out = 0.0
    if request.budget_max is not None and product.price > request.budget_max:
        out = (product.price - request.budget_max) / max(request.budget_max, 1.0)
    elif request.budget_min is not None and product.price < request.budget_min:
        out = (request.budget_min - product.price) / max(request.budget_min, 1.0)
    return lacking + (1 + 4 * out if out else 0.0)


def _pressed(state: ConversationState, outcome: Outcome) -> tuple[int | None, str | None]:
    """What this turn pressed on the latest suggestions: (position, kind), or (None, None)."""
    pressed = outcome.feedback
    if pressed is not None:
        for item in state.last_shown:
            if item.item_id == pressed.item_id:
                return item.position, pressed.kind
    return None, None


def _bought(state: ConversationState, orders: Sequence[Order]) -> int | None:
    """The position of a suggestion the verified customer ordered since it was shown."""
    if state.slate_shown_at is None:
        return None
    shown = {item.item_id: item.position for item in state.last_shown}
    positions = [
        shown[line.item_id]
        for order in orders
        if order.status != "cancelled" and order.placed_at.timestamp() >= state.slate_shown_at
        for line in order.items
        if line.item_id in shown
    ]
    return min(positions) if positions else None


def _activity(
    state: ConversationState,
    incoming: Incoming,
    understanding: Understanding,
    decision: Decision,
    outcome: Outcome,
    now: float,
) -> TurnActivity:
    """The counts of one turn, as the dashboard keeps them (no words, no ids)."""
    today = day_of(now)
    earlier = (turn.at for turn in state.transcript if turn.role == "customer")
    return TurnActivity(
        at=now,
        platform=incoming.platform,
        intent=str(understanding.intent),
        sentiment=str(understanding.sentiment),
        decision=str(decision.action),
        first_today=all(day_of(at) != today for at in earlier),
        shown=len(outcome.shown or ()),
        pressed=(outcome.feedback.position or None) if outcome.feedback else None,
        feedback=outcome.feedback.kind if outcome.feedback else None,
    )


def advance(
    state: ConversationState,
    incoming: Incoming,
    text: str,
    understanding: Understanding,
    outcome: Outcome,
    now: float,
    low_confidence: float = PolicyConfig().low_confidence,
) -> ConversationState:
    """The state after one turn: every change of a turn is applied here, in one value."""
    changes: dict[str, object] = {
        "user_id": state.user_id or incoming.user_id,
        "platform": incoming.platform,
        "turns": state.turns + 1,
    }
    if incoming.message_id:
        changes["seen_message_ids"] = (*state.seen_message_ids, incoming.message_id)[
            -SEEN_MESSAGES_LIMIT:
        ]
        answered = AnsweredMessage(
            message_id=incoming.message_id, replies=tuple(_kept(r) for r in outcome.replies)
        )
        changes["answered"] = (*state.answered, answered)[-ANSWERED_LIMIT:]
    if incoming.button is None:
        changes["sentiments"] = (*state.sentiments, understanding.sentiment.value)[
            -SENTIMENT_LIMIT:
        ]
        changes["intents"] = (*state.intents, understanding.intent.value)[-SENTIMENT_LIMIT:]
        low = understanding.confidence < low_confidence
        changes["low_confidence_streak"] = state.low_confidence_streak + 1 if low else 0
    if outcome.request is not None:
        changes["request"] = outcome.request
    if outcome.shown is not None:
        changes["last_shown"] = outcome.shown
        changes["shown"] = tuple(dict.fromkeys((*state.shown, *(i.item_id for i in outcome.shown))))
    if outcome.feedback is not None:
        changes["feedback"] = (*state.feedback, outcome.feedback)[-50:]
        rejected = outcome.feedback.kind == "not_for_me"
        changes["not_for_me_streak"] = state.not_for_me_streak + 1 if rejected else 0
    if outcome.escalation is not None:
        changes["escalation"] = outcome.escalation
    if understanding.source != "account":  # an e-mail address may follow only right after
        changes["order_to_verify"] = outcome.order_to_verify
    changes["open_slate"] = outcome.slate  # the turn closed the one before, if any
    changes["slate_shown_at"] = now if outcome.slate else None
    new = state.model_copy(update=changes)
    said = _said(incoming, text)
    new = new.with_turn(Turn(role="customer", text=said, at=now, intent=understanding.intent.value))
    for reply in outcome.replies:
        new = new.with_turn(Turn(role="assistant", text=reply.text, at=now, private=reply.private))
    return new


def _said(incoming: Incoming, text: str) -> str:
    """What the customer did this turn, as a transcript line."""
    return text if incoming.button is None else f"[pressed {incoming.button}]"


def _kept(reply: Reply) -> KeptReply:
    buttons = tuple((b.label, b.payload) for b in reply.buttons)
    return KeptReply(
        text=reply.text, buttons=buttons, thread_id=reply.thread_id, private=reply.private
    )


def _restored(kept: KeptReply) -> Reply:
    buttons = tuple(Button(label, payload) for label, payload in kept.buttons)
    return Reply(kept.text, buttons, thread_id=kept.thread_id, private=kept.private)


def _say(text: str, thread: str | None) -> Outcome:
    return Outcome((Reply(text, thread_id=thread),))


def _addressed(reply: Reply, incoming: Incoming) -> Reply:
    return replace(
        reply, thread_id=reply.thread_id or incoming.thread_id,
        conversation_id=incoming.conversation_id,
    )


def _small_talk(topic: str | None, text: str) -> str:
    lowered = text.lower()
    if topic == "complaint":
        return replies.COMPLAINT
    if any(word in lowered for word in ("thank", "thx", "cheers", "appreciate")):
        return replies.THANKS
    if any(word in lowered for word in ("bye", "goodbye", "see you", "good night")):
        return replies.GOODBYE
    return replies.GREETING
