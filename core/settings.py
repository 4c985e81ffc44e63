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
    # The trained model folder; filled in from models_dir when not set.
    recommender_dir: Path = Field(
        default_factory=lambda data: data["models_dir"] / "recommender-demo"
    )
    # What the scoring service serves: the demo store, or the Amazon Beauty items (benchmarks).
    recommender_catalog: Literal["demo", "amazon-beauty"] = "demo"
    celery_broker_url: str = "redis://127.0.0.1:6379/1"
    celery_result_backend: str = "redis://127.0.0.1:6379/1"
    celery_queue: str = "concierge.score"  # separate queues keep deployments (and test runs) apart
    worker_threads: int = 1  # torch threads per worker process (and for training)
    worker_concurrency: int = 1  # worker processes per `concierge worker`
    score_timeout_s: float = 3.0  # a bot waits this long for a scoring job, then degrades
    task_time_limit_s: float = 30.0  # a job running longer is killed; the soft limit is 80%
    result_expires_s: int = 600
    # An unacknowledged job whose worker vanished is redelivered after this long.
    broker_visibility_timeout_s: float = 60.0

    # Logging.
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Turn handling.
    lock_timeout_s: float = 30.0
