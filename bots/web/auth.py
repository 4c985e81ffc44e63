"""Who may use the desk: agents' passwords (argon2, a maintained hash), sign-in throttling, and
the CSRF token every form carries.

Sessions are signed cookies (Starlette's SessionMiddleware); the session holds the agent's login
and a random CSRF token. A form posted without the session's token is refused, so another site
cannot make a signed-in agent's browser claim, reply or resolve.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.shopdb.agents import DeskAgent, SqlAgents

MIN_PASSWORD = 10  # characters
FAILURES_ALLOWED = 5  # wrong passwords for one login within the window, then a pause
FAILURE_WINDOW_S = 300.0

_hasher = PasswordHasher()
# Checked against when the login does not exist, so a wrong login costs as long as a wrong
# password and the timing does not tell which logins exist.
_NOBODY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


@dataclass
class SignIn:
    """Checks a login and password; refuses a login after repeated failures for a while."""

    agents: SqlAgents
    clock: Any = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, login: str, password: str) -> DeskAgent | None:
        """The agent when the password is theirs; None otherwise (and for a paused login)."""
        login = login.strip()
        if self.paused(login):
            return None
        agent = self.agents.get(login) if login else None
        try:
            _hasher.verify(agent.password_hash if agent else _NOBODY, password)
        except (VerificationError, InvalidHashError):
            self._failed(login)
            return None
        if agent is None:
            return None
        if _hasher.check_needs_rehash(agent.password_hash):
            self.agents.set_password(agent.login, _hasher.hash(password))
        with self._lock:
            self._failures.pop(login, None)
        return agent

    def paused(self, login: str) -> bool:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(login, []) if now - t < FAILURE_WINDOW_S]
            self._failures[login] = recent
        return len(recent) >= FAILURES_ALLOWED

    def _failed(self, login: str) -> None:
        with self._lock:
            self._failures.setdefault(login, []).append(self.clock())


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: dict[str, Any], sent: object) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and secrets.compare_digest(token, sent)
