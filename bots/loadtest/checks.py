"""What a load run proves, computed from what the platforms' stand-ins recorded.

Pure functions over plain records, so a test can feed them a duplicated reply or a lost message
and see it flagged: every customer message must get exactly one answer (the replies of one
turn), every agent reply must arrive exactly once, and no secret may appear in any log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.infra.percentiles import percentile
from core.turn import replies

# Answers that say the turn did not run: the store was unreachable, or the core failed.
APOLOGIES = frozenset({replies.STORE_DOWN, replies.INTERNAL_ERROR})


@dataclass
class Sent:
    """One customer message as the harness sent it, and the replies the platform got for it."""

    platform: str
    customer: str
    key: str  # the platform's id of the message (Telegram message id, Slack ts, terminal turn)
    text: str
    sent_at: float  # unix seconds
    flood: bool = False
    replies: list[tuple[str, float]] = field(default_factory=list)  # (text, at)

    @property
    def answered_at(self) -> float | None:
        return min((at for _, at in self.replies), default=None)

    @property
    def latency_ms(self) -> float | None:
        answered = self.answered_at
        return None if answered is None else (answered - self.sent_at) * 1000


@dataclass(frozen=True)
class AgentReply:
    """One agent reply the harness sent through the support desk; `marker` is in its text."""

    conversation_id: str
    marker: str
    sent_at: float


@dataclass
class MessageCounts:
    """The counts a run reports about customer messages."""

    turns: int = 0  # messages answered (a turn's replies, or a busy/rate-limit notice)
    lost: int = 0  # messages never answered
    duplicated: int = 0  # messages answered by more than one turn (a reply repeated)
    busy: int = 0
    rate_limited: int = 0
    errors: int = 0  # answered with the store-down or internal-error apology
    lost_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)


def judge_messages(messages: Iterable[Sent]) -> MessageCounts:
    """Lost, duplicated and notice counts over every message sent.

    A turn may send several replies, but never the same text twice: a text repeated for one
    message means the message was handled twice (redelivered after a crash, say)."""
    verdict = MessageCounts()
    notices = {replies.TOO_FAST}
    for message in messages:
        if not message.replies:
            verdict.lost += 1
            if len(verdict.lost_examples) < 5:
                verdict.lost_examples.append(f"{message.platform} {message.customer} {message.key}")
            continue
        verdict.turns += 1
        texts = Counter(text for text, _ in message.replies)
        if max(texts.values()) > 1:
            verdict.duplicated += 1
            if len(verdict.duplicated_examples) < 5:
                verdict.duplicated_examples.append(
                    f"{message.platform} {message.customer} {message.key}"
                )
        if replies.NOT_HANDLED in texts:
            verdict.busy += 1
        if notices & texts.keys():
            verdict.rate_limited += 1
        if APOLOGIES & texts.keys():
            verdict.errors += 1
    return verdict


def saved_a_turn(message: Sent) -> bool:
    """Whether the answer says the turn ran (and so is in the customer's saved state): an
    apology, a resend request or a rate-limit notice means nothing was kept."""
    texts = {text for text, _ in message.replies}
    return bool(texts) and not texts & (APOLOGIES | {replies.NOT_HANDLED, replies.TOO_FAST})


def judge_agent_replies(
    sent: Sequence[AgentReply], received: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """{sent, received, lost, duplicated}: `received` maps a conversation id to the texts its
    customer got outside turns; each marker must be in exactly one of them."""
    counts = {"sent": len(sent), "received": 0, "lost": 0, "duplicated": 0}
    for reply in sent:
        found = sum(reply.marker in text for text in received.get(reply.conversation_id, ()))
        if found == 0:
            counts["lost"] += 1
        else:
            counts["received"] += 1
            counts["duplicated"] += found > 1
    return counts


def latency_figures(
    messages: Iterable[Sent], windows: Sequence[tuple[float, float]] = ()
) -> dict[str, float | None]:
    """p50/p99 of answered, non-flood messages; `_calm` leaves out any message whose wait
    overlapped one of `windows` (a fault's start and end, unix seconds)."""
    every, calm = [], []
    for message in messages:
        latency = message.latency_ms
        if latency is None or message.flood:
            continue
        every.append(latency)
        end = message.sent_at + latency / 1000
        if not any(start <= end and message.sent_at <= stop for start, stop in windows):
            calm.append(latency)

    def figure(values: list[float], q: float) -> float | None:
        return round(percentile(values, q), 1) if values else None

    return {
        "p50_ms": figure(every, 50),
        "p99_ms": figure(every, 99),
        "p50_ms_calm": figure(calm, 50),
        "p99_ms_calm": figure(calm, 99),
    }


def secrets_in_logs(secrets: Mapping[str, str], logs: Iterable[Path]) -> dict[str, list[str]]:
    """{secret name: [log files holding it]} for every secret found (an empty dict is clean)."""
    found: dict[str, list[str]] = {}
    wanted = {name: value for name, value in secrets.items() if value}
    for path in logs:
        text = path.read_text(errors="replace")
        for name, value in wanted.items():
            if value in text:
                found.setdefault(name, []).append(path.name)
    return found


def silent_refusals(conversation: str, logs: Iterable[Path]) -> int:
    """Messages of `conversation` the rate limit refused without a reply (by design: only the
    first refusal of a limited stretch is answered), counted from the bots' `turn.done` lines.
    An unanswered message beyond these is lost."""
    needle = f" conversation={conversation} "
    return sum(
        1
        for path in logs
        for line in path.read_text(errors="replace").splitlines()
        if "turn.done" in line and needle in line
        and "decision=rate_limited" in line and "notice=False" in line
    )
