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
    demo_dir: Path = REPO_ROOT / "data" / "demo"  # catalog, orders, customers and FAQ files
    models_dir: Path = REPO_ROOT / "models"  # trained models: nlu/, recommender-demo/
    data_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "data",
        description="public datasets for training and benchmarks",
    )

    # Conversation state: SQLite file (embedded default) or Redis (several bot processes).
    state_backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: Path = REPO_ROOT / "var" / "concierge.sqlite3"  # state file (sqlite backend)
    redis_url: str = "redis://127.0.0.1:6379/0"  # state, locks and tickets (redis backend)
    redis_prefix: str = "concierge"  # key prefix, so several deployments can share a Redis

    # Understanding: keyword (placeholder), local model, llm, or cascade (local then llm).
    understander: Literal["keyword", "local", "llm", "cascade"] = "keyword"

    # Recommender: popularity (placeholder), in-process model, or Celery workers.
    recommender: Literal["popularity", "inprocess", "celery"] = "popularity"

    # Logging.
    log_level: str = "INFO"  # DEBUG, INFO, WARNING or ERROR
    log_format: Literal["text", "json"] = "text"  # json for log collectors

    # Health and Prometheus metrics over HTTP (/healthz, /metrics); port 0 serves none.
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 only inside a container network
    metrics_port: int = 0  # e.g. 9100; every process needs its own port on one host
    # SIGTERM: the turn in flight may finish within this many seconds, then the process exits.
    shutdown_grace_s: float = 20.0

    # Turn handling.
    lock_timeout_s: float = 30.0  # wait this long for a conversation busy in another turn
