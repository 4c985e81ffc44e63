"""All configuration, read once from the environment (prefix CONCIERGE_) and `.env`.

Build one `Settings` in `main()` and pass it down; nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where things live.
    demo_dir: Path = REPO_ROOT / "data" / "demo"
    models_dir: Path = REPO_ROOT / "models"
    data_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "data",
        description="public datasets for training and benchmarks",
    )

    # Conversation state: SQLite file (embedded default) or Redis (several bot processes).
    state_backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: Path = REPO_ROOT / "var" / "concierge.sqlite3"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "concierge"

    # Understanding: keyword (placeholder), local model, llm, or cascade (local then llm).
    understander: Literal["keyword", "local", "llm", "cascade"] = "keyword"

    # Recommender: popularity (placeholder), in-process model, or Celery workers.
    recommender: Literal["popularity", "inprocess", "celery"] = "popularity"

    # Logging.
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Turn handling.
    lock_timeout_s: float = 30.0

    # Hand-over to people: tickets live with the state (same SQLite file, or the same Redis).
    escalation: Literal["on", "off"] = "on"
    escalation_sla_s: float = Field(
        default=300.0, description="an unclaimed ticket this old gets an update and a reminder"
    )
    delivery_lease_s: float = Field(
        default=30.0, description="a taken delivery not acknowledged this long is taken again"
    )
    delivery_wait_s: float = 1.0  # longest wait of a delivery loop for the next message
    delivery_poll_s: float = 0.05  # how often a SQLite delivery loop looks for new messages

    # Escalation thresholds (see core.policy.PolicyConfig).
    policy_negative_window: int = 3
    policy_negative_needed: int = 2
    policy_worsening_turns: int = 3
    policy_low_confidence: float = 0.45
    policy_low_confidence_turns: int = 3
    policy_not_for_me_turns: int = 3
    policy_complaint_window: int = 4
    policy_complaints_needed: int = 2

    # The support team's side in a chat workspace: where tickets are posted, who may act.
    support_channel: str | None = None  # channel id tickets are posted to (a thread each)
    support_agents: list[str] = Field(
        default_factory=list, description="user ids allowed to claim, answer and close tickets"
    )
    support_agent_group: str | None = None  # a user group whose members may act, too
    support_summary: Literal["template", "llm"] = "template"
