"""A whole hand-over through two real processes on one SQLite file.

The customer is the terminal chat: the real `python -m bots.terminal` with the trained local
model, and the same chat through tests/e2e/handover_bot.py with deterministic understanding;
`python -m bots.agent_console` is the support agent. Both are driven through stdin like a
person typing, and read back from stdout.
"""

from __future__ import annotations

import json
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.handover.tickets.sqlite import SqliteTicketStore
from core.turn import replies
from tests.bots.peers import wait_until
from tests.processes import clean_env

TIMEOUT_S = 120.0  # generous: the first turn loads the models on a busy machine


@dataclass
class Process:
    """A running command with a line-by-line view of its stdout."""

    name: str
    popen: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, env: dict[str, str], *args: str) -> Process:
        popen = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(env["CONCIERGE_SQLITE_PATH"]).parent,
            env=env,
            bufsize=1,
        )
        process = cls(name, popen)
        threading.Thread(target=process._read, daemon=True).start()
        return process

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def expect(self, pattern: str, timeout: float = TIMEOUT_S) -> re.Match[str]:
        """The next output line matching `pattern`; lines before it are kept in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.01, left))
            except queue.Empty:
                raise AssertionError(
                    f"{self.name}: no line matching {pattern!r} within {timeout} s; "
                    f"saw {self.seen[-10:]}; stderr: {self._stderr()}"
                ) from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def quiet(self, seconds: float) -> list[str]:
        """Lines printed within `seconds` (to check that nothing was said)."""
        got: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
        self.seen += got
        return got

    def stop(self) -> None:
        if self.popen.poll() is None:
            assert self.popen.stdin is not None
            self.popen.stdin.close()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def _stderr(self) -> str:
        if self.popen.poll() is None or self.popen.stderr is None:
            return "(still running)"
        return self.popen.stderr.read()[-2000:]


def turn_saved(path: Path, text: str) -> bool:
    """Whether a customer turn with `text` is in the saved state and no turn holds a lock."""
    db = sqlite3.connect(path)
    try:
        states = [row[0] for row in db.execute("SELECT state FROM conversations")]
        locks = db.execute("SELECT count(*) FROM locks").fetchone()[0]
    finally:
        db.close()
    return locks == 0 and any(json.dumps(text) in state for state in states)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(
        sqlite_path=tmp_path / "concierge.sqlite3", state_backend="sqlite", delivery_wait_s="0.5"
    )


# The customer's process: the terminal chat with deterministic understanding, and the real
# `python -m bots.terminal` with the trained local model (as `make test` builds it).
CUSTOMERS = {
    "scripted": ("tests.e2e.handover_bot", "terminal"),
    "real": ("bots.terminal",),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CUSTOMERS))
def test_customer_in_terminal_agent_in_console(
    env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    customer = Process.start("customer", env, *CUSTOMERS[kind], "--user", "C0001")
    agent = Process.start("agent", env, "bots.agent_console", "--agent", "U_DANA", "--name", "Dana")
    try:
        customer.send("hi")
        customer.expect(r"^concierge> Hi!")
        customer.send("I want to talk to a human agent, now")
        customer.expect(re.escape(replies.ESCALATED))

        opened = agent.expect(
            r"^\[(T-\d{8}-[0-9a-f]+)\] (?:new ticket|open ticket \(open\)): "
            r"C0001 \(verified customer C0001\) on terminal"
        )
        ticket_id = opened.group(1)
        agent.expect(r"Customer: I want to talk to a human agent, now")

        agent.send(f"claim {ticket_id}")
        agent.expect(f"{ticket_id}: claimed by you")
        customer.expect(r"Dana has picked up your request")

        customer.send("my parcel never arrived")
        agent.expect(rf"\[{ticket_id}\] customer: my parcel never arrived")
        # The assistant stays silent while a person handles it: once the customer's turn is
        # over (saved, its lock released), nothing was said, and nothing comes after.
        wait_until(lambda: turn_saved(Path(env["CONCIERGE_SQLITE_PATH"]),
                                      "my parcel never arrived"), TIMEOUT_S)
        assert customer.quiet(0.5) == []

        # The agent console restarts mid-ticket: nothing is lost.
        agent.stop()
        (tmp_path / "agent-before-restart.txt").write_text("\n".join(agent.seen) + "\n")
        agent = Process.start(
            "agent", env, "bots.agent_console", "--agent", "U_DANA", "--name", "Dana"
        )
        agent.expect(rf"\[{ticket_id}\] open ticket \(claimed\): C0001 "
                     r"\(verified customer C0001\) on terminal")
        agent.send("list")
        agent.expect(rf"{ticket_id}\s+claimed\s+claimed by U_DANA")

        agent.send(f"reply {ticket_id} So sorry! A replacement ships today by express.")
        agent.expect("sent to the customer")
        customer.expect(r"^concierge> Dana \(support team\): So sorry! A replacement ships today")

        agent.send(f"resolve {ticket_id}")
        agent.expect("resolved; the customer is asked for a rating")
        customer.expect(re.escape(replies.RESOLVED))
        customer.expect(r"\[4\] 4")
        customer.send("4")
        customer.expect(re.escape(replies.RATED))

        agent.send(f"show {ticket_id}")
        agent.expect(rf"{ticket_id} \(resolved, claimed by U_DANA, rated 4/5\)")

        customer.send("hi")  # back with the assistant
        customer.expect(r"^concierge> Hi!")
    finally:
        customer.stop()
        agent.stop()
        (tmp_path / "customer.txt").write_text("\n".join(customer.seen) + "\n")
        (tmp_path / "agent.txt").write_text("\n".join(agent.seen) + "\n")

    stored = SqliteTicketStore(Path(env["CONCIERGE_SQLITE_PATH"])).get(ticket_id)
    assert stored is not None
    assert (stored.status, stored.agent, stored.rating) == ("resolved", "U_DANA", 4)
    texts = [entry.text for entry in stored.transcript]
    assert "my parcel never arrived" in texts
    assert "So sorry! A replacement ships today by express." in texts


@pytest.mark.slow
def test_console_refuses_what_does_not_apply(env: dict[str, str]) -> None:
    agent = Process.start("agent", env, "bots.agent_console", "--agent", "U_OMAR")
    try:
        agent.send("list")
        agent.expect("No open tickets.")
        agent.send("claim T-20260101-00000000")
        agent.expect("Refused: There is no ticket T-20260101-00000000.")
        agent.send("reply hello")
        agent.expect("Refused: Which ticket?")
        agent.send("dance")
        agent.expect("Unknown command 'dance'")
    finally:
        agent.stop()
