"""Button payloads longer than a platform allows travel as short ids stored in the ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bots.ledger.store import Ledger

SHORT_PREFIX = "~"  # marks a short id that stands for a stored payload


def fits(payload: str, limit_bytes: int) -> bool:
    """Whether a button can carry `payload` itself."""
    return len(payload.encode()) <= limit_bytes and not payload.startswith(SHORT_PREFIX)


def short_payloads(ledger: Ledger, payloads: Sequence[str], limit_bytes: int) -> list[str]:
    """`short_payload` for each; only long ones touch the ledger."""
    return [short_payload(ledger, payload, limit_bytes) for payload in payloads]


def short_payload(ledger: Ledger, payload: str, limit_bytes: int) -> str:
    """`payload` itself when it fits in `limit_bytes`, else a short id stored in the ledger."""
    if fits(payload, limit_bytes):
        return payload
    digest = hashlib.sha256(payload.encode()).hexdigest()[:20]  # same payload, same id
    ledger.put(f"payload:{digest}", payload)
    return SHORT_PREFIX + digest


def full_payload(ledger: Ledger, data: str) -> str:
    """The payload a button carried; an unknown short id comes back as is (the core says so)."""
    if not data.startswith(SHORT_PREFIX):
        return data
    return ledger.get(f"payload:{data[len(SHORT_PREFIX) :]}") or data
