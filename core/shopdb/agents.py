"""Support agents who sign in to the web desk, in the store database. Only a password hash is
kept; hashing and checking belong to the web desk (`bots.web.auth`)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.shopdb.database import ShopDatabase
from core.shopdb.tables import agents


class DeskAgent(BaseModel):
    model_config = ConfigDict(frozen=True)

    login: str
    name: str
    password_hash: str


class SqlAgents:
    def __init__(self, database: ShopDatabase) -> None:
        self._database = database

    def get(self, login: str) -> DeskAgent | None:
        with self._database.reads.connect() as connection:
            row = connection.execute(select(agents).where(agents.c.login == login)).mappings()
            found = row.first()
        return DeskAgent(**{k: found[k] for k in DeskAgent.model_fields}) if found else None

    def add(self, agent: DeskAgent) -> bool:
        """Add a new agent; False when the login is taken."""
        try:
            with self._database.engine.begin() as connection:
                connection.execute(
                    agents.insert().values(**agent.model_dump(), created_at=datetime.now(UTC))
                )
        except IntegrityError:
            return False
        return True

    def set_password(self, login: str, password_hash: str) -> bool:
        with self._database.engine.begin() as connection:
            result = connection.execute(
                update(agents).where(agents.c.login == login).values(password_hash=password_hash)
            )
        return bool(result.rowcount)

    def logins(self) -> list[str]:
        with self._database.reads.connect() as connection:
            query = select(agents.c.login).order_by(agents.c.login)
            return [row[0] for row in connection.execute(query)]
