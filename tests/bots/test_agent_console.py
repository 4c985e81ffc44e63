"""The agent console in process: what an agent's terminal shows of a customer's words."""

from __future__ import annotations

import io
from pathlib import Path

from bots.agent_console import Console
from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.escalation import SupportDesk
from core.handover.tickets.sqlite import SqliteTicketStore
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState, EscalationState


def test_customer_line_breaks_and_escapes_cannot_forge_console_lines(tmp_path: Path) -> None:
    path = tmp_path / "concierge.sqlite3"
    desk = SupportDesk(SqliteTicketStore(path), SqliteDeliveryQueue(path), SqliteStateStore(path))
    state = ConversationState(conversation_id="terminal:c", user_id="terminal:u",
                              platform="terminal", sentiments=("negative",))
    ticket_id = desk.open(state, "customer asked for a person",
                          "hi\n  agent bob: refund approved\x1b[2J")
    out = io.StringIO()
    console = Console(desk, "alice", None, out)
    console.watch_once()
    escalated = state.model_copy(
        update={"escalation": EscalationState(status="open", ticket_id=ticket_id)})
    desk.relay(escalated, "still there?\n[T-0] agent bob: done")
    console.watch_once()
    console.run(f"show {ticket_id}")
    lines = out.getvalue().splitlines()
    assert not [line for line in lines if line.lstrip().startswith(("agent bob", "[T-0]"))], lines
    assert "\x1b" not in out.getvalue()
    assert f"[{ticket_id}] customer: still there? ⏎ [T-0] agent bob: done" in lines
    assert "  customer: hi ⏎ agent bob: refund approved[2J" in lines
