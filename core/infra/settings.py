"""All configuration, read once from the environment (prefix CONCIERGE_) and `.env`.

Build one `Settings` in `main()` and pass it down; nothing else reads the environment.
Every `Settings` built hands its secrets to the log filter (`secrets_of`), so no process can
log them, whatever it logs and whenever it configures logging.
"""

from __future__ import annotations

from dataclasses import fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.infra.logs import keep_secrets

C = TypeVar("C")


def packaged_data(*parts: str) -> Path:
    """A file shipped in the data/ folder (installed as the package `core.data`)."""
    return Path(str(files("core.data").joinpath(*parts)))



class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where things live.
    # Relative paths are taken from the directory a command runs in.
    demo_dir: Path = Field(
        default_factory=lambda: packaged_data("demo"),
        description="the demo store's catalog, orders, customers and FAQ (shipped with Concierge)",
    )
    # The store database (catalog, customers, orders, help articles): a SQLAlchemy URL.
    # SQLite (embedded default) or PostgreSQL: postgresql://user:password@host:5432/db.
    store_url: SecretStr = Field(
        default=SecretStr("sqlite:///var/store.sqlite3"),
        description="the store database (SQLAlchemy URL; sqlite:///path or postgresql://...)",
    )
    store_check_s: float = 1.0  # how often a process asks whether the catalog changed
    models_dir: Path = Path("models")  # trained models: nlu/, recommender-demo/
    data_dir: Path = Field(
        default=Path("../shared/data"), description="public datasets for training and benchmarks"
    )

    # Conversation state: SQLite file (embedded default) or Redis (several bot processes).
    state_backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: Path = Path("var/concierge.sqlite3")  # state file (sqlite backend)
    redis_url: str = "redis://127.0.0.1:6379/0"  # state, locks and tickets (redis backend)
    redis_prefix: str = "concierge"  # key prefix, so several deployments can share a Redis

    # Understanding: the local model, an LLM (local model as fallback), or cascade (local
    # first, the LLM only when the local model is unsure).
    understander: Literal["local", "llm", "cascade"] = "local"
    nlu_taxonomy: Path = Field(
        default_factory=lambda: packaged_data("nlu", "intents.yaml"),
        description="intents and their examples (shipped with Concierge)",
    )
    nlu_dir: Path | None = Field(
        default=None, description="the trained local model; None means models_dir / 'nlu'"
    )
    nlu_threads: int = 1  # torch threads for the local model in this process
    # Concurrent turns share one forward of the local model: up to this many messages (1: each
    # message alone), waiting up to nlu_batch_wait_ms for companions while messages arrive
    # together (a lone message never waits).
    nlu_batch_max: int = 32  # most messages in one forward of the local model; 1 = no batching
    nlu_batch_wait_ms: float = 2.0  # under load, how long a batch waits for more messages
    cascade_threshold: float = 0.6  # local confidence below this asks the LLM
    # The MiniLM encoder behind the local model and the recommender's request texts: float
    # (float32, or bfloat16 where the CPU multiplies it natively) or int8 (torch dynamic
    # quantisation of its linear layers: less time per message, at an accuracy cost that
    # `concierge bench nlu --precisions` measures).
    encoder_precision: Literal["float", "int8"] = Field(
        default="float",
        description="MiniLM encoder arithmetic for understanding and request texts: float or "
                    "int8 (dynamic quantisation, faster on CPU)",
    )
    # Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server).
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_model: str = "gemma-3-270m"  # model name the endpoint serves
    llm_api_key: SecretStr | None = None  # None for local servers that need no key
    llm_timeout_s: float = 10.0  # one request; then it counts as failed
    llm_retries: int = 2  # extra attempts after timeouts, connection errors, 429 and 5xx
    llm_backoff_s: float = 0.5  # first wait between attempts; doubles each time
    llm_breaker_failures: int = 5  # failed calls in a row that stop calls to the LLM
    llm_breaker_reset_s: float = 30.0  # then one trial call after this long

    # Explanations of suggestions: the template, or an LLM phrasing the same evidence (any
    # sentence naming a fact not in the evidence is replaced by the template).
    explanations: Literal["template", "llm"] = "template"

    # Recommender: the model scored in this process, or by Celery workers.
    recommender: Literal["inprocess", "celery"] = "inprocess"
    # The trained model folder; filled in from models_dir when not set.
    recommender_dir: Path = Field(
        default_factory=lambda data: data["models_dir"] / "recommender-demo"
    )
    # How often a scoring process looks whether a promotion or a rollback changed the model
    # (`concierge model`); it then loads the new one between two requests.
    model_check_s: float = Field(default=5.0, ge=0.0)
    # The scheduled retraining (Celery beat, `concierge beat`): every this many seconds a new
    # model is trained from the store's orders and feedback, evaluated against the served one
    # on each customer's newest purchase, and promoted only when better beyond the 95% interval.
    retrain_every_s: float = Field(default=86_400.0, ge=0.0)  # 0: never
    retrain_budget_min: float = Field(default=10.0, gt=0.0)  # training time per candidate
    # What the scoring service serves: the store database's catalog, or the Amazon Beauty data
    # set's items as they are (benchmarks of the model alone).
    recommender_catalog: Literal["store", "amazon-beauty"] = "store"
    celery_broker_url: str = "redis://127.0.0.1:6379/1"  # where scoring jobs queue
    celery_result_backend: str = "redis://127.0.0.1:6379/1"  # where scores come back
    celery_queue: str = "concierge.score"  # separate queues keep deployments (and test runs) apart
    worker_threads: int = 1  # torch threads per worker process (and for training)
    worker_concurrency: int = 1  # worker processes per `concierge worker`
    score_timeout_s: float = 3.0  # a bot waits this long for a scoring job, then degrades
    task_time_limit_s: float = 30.0  # a job running longer is killed; the soft limit is 80%
    result_expires_s: int = 600  # uncollected results are dropped after this
    # An unacknowledged job whose worker vanished is redelivered after this long.
    broker_visibility_timeout_s: float = 60.0

    # Learning from feedback: a Thompson-sampling bandit re-ranks the recommender's best
    # `bandit_candidates` from customers' presses (`workers.recommender.bandit`). Exploration
    # scales the posterior's spread: 0 always shows the current best; at most 1.
    bandit: bool = False
    bandit_exploration: float = Field(default=0.1, ge=0.0, le=1.0)  # posterior spread sampled
    bandit_candidates: int = Field(default=10, ge=4, le=50)  # the model's best, re-ranked
    bandit_refresh_s: float = Field(default=5.0, ge=0.0)  # how often a process re-reads it

    # Logging.
    log_level: str = "INFO"  # DEBUG, INFO, WARNING or ERROR
    log_format: Literal["text", "json"] = "text"  # json for log collectors

    # Health and Prometheus metrics over HTTP (/healthz, /metrics); port 0 serves none.
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 only inside a container network
    metrics_port: int = 0  # e.g. 9100; every process needs its own port on one host
    # SIGTERM: the turn in flight may finish within this many seconds, then the process exits.
    shutdown_grace_s: float = 20.0

    # Customers' identity: linking a chat user to a store customer, and their data.
    # The key that signs link tokens and e-mail codes; when unset, one generated and kept in
    # the store database (every process sharing the store uses it).
    link_secret: SecretStr | None = None
    link_ttl_s: float = 900.0  # a link token works this long after the shop issued it
    # The shop's backend asks for link tokens over HTTP (`concierge link serve`) with this key.
    link_api_key: SecretStr | None = None
    link_api_host: str = "127.0.0.1"  # link endpoint address
    link_api_port: int = 8090  # link endpoint port
    telegram_bot_username: str | None = None  # for deep links t.me/<bot>?start=<token>
    verify_attempts_per_hour: int = 10  # failed proofs and unproven order lookups per user
    email_code_ttl_s: float = 600.0  # an e-mailed code works this long
    email_code_attempts: int = 5  # wrong entries that void a code
    email_codes_per_hour: int = 3  # code e-mails per chat user
    # E-mail out (codes). No host: no codes; customers link with the shop's link instead.
    smtp_host: str | None = None  # the SMTP server codes are sent through
    smtp_port: int = 25  # 587 for STARTTLS, 465 for TLS at most providers
    smtp_security: Literal["none", "starttls", "tls"] = "none"  # how the connection is secured
    smtp_user: str | None = None  # log in as this user (with smtp_password), when set
    smtp_password: SecretStr | None = None  # never logged
    smtp_sender: str = "Concierge <no-reply@localhost>"  # the From: of code e-mails
    smtp_timeout_s: float = 10.0  # one e-mail; then the customer is told codes are unavailable
    # Retention: idle conversations (with their transcripts) and closed tickets are deleted
    # after this many days (0 keeps them); checked every retention_check_s by each process.
    retention_transcript_days: int = 90  # idle conversations and their transcripts
    retention_ticket_days: int = 365  # resolved or handed-back tickets, after closing
    retention_check_s: float = 3600.0  # how often each process applies the retention

    # Turn handling.
    lock_timeout_s: float = 30.0  # wait this long for a conversation busy in another turn
    # A state store that does not answer before a turn began (a restart, a fail-over) is tried
    # again this long, the customer seeing the typing indicator; then they are told.
    store_wait_s: float = 10.0
    # Per-sender flood limit, checked before anything else in a turn (in Redis with the state,
    # so every bot process shares it): `rate_limit_burst` messages at once, then
    # `rate_limit_per_s` sustained; the first refused message of a stretch gets a notice.
    rate_limit_burst: int = 8  # messages one sender may send at once; 0 turns the limit off
    rate_limit_per_s: float = 1.0  # messages per second one sender may keep up after a burst
    rate_limit_button_cost: float = 0.5  # a button press counts as this much of a message

    # Chat adapters: records they keep (delivery ids seen, long button payloads, threads joined).
    adapter_ledger_ttl_s: int = 30 * 24 * 3600
    # A customer's message is kept until answered; one its process stopped renewing for this
    # long (the process died) is answered by any bot process of the platform.
    inbox_lease_s: float = 60.0
    # A message for a conversation busy in another turn is retried (typing shown) this long,
    # then the customer is asked to send it again.
    busy_give_up_s: float = 300.0

    # Telegram. Long polling unless a public webhook URL is set.
    telegram_token: SecretStr | None = None
    telegram_webhook_url: str | None = None  # public https URL Telegram posts updates to
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="required with a webhook URL, never derived from the token; 1-256 of "
                    "A-Z a-z 0-9 _ - (e.g. `openssl rand -hex 32`)",
    )
    telegram_bind_host: str = "127.0.0.1"  # webhook listener address
    telegram_port: int = 8443  # webhook listener port
    telegram_base_url: str = "https://api.telegram.org"  # a Bot API server or the test emulator
    telegram_poll_interval_s: float = 0.0  # pause between getUpdates calls (Telegram holds each)

    # Slack. HTTP Events API (signing secret) or Socket Mode (app-level token).
    slack_mode: Literal["http", "socket"] = "http"
    slack_bot_token: SecretStr | None = None  # xoxb-...
    slack_signing_secret: SecretStr | None = None  # HTTP mode
    slack_app_token: SecretStr | None = None  # xapp-..., Socket Mode
    slack_bind_host: str = "127.0.0.1"  # HTTP mode listener address
    slack_port: int = 3000  # HTTP mode listener port
    slack_path: str = "/slack/events"  # events and interactivity both post here
    slack_api_url: str = "https://slack.com/api/"  # Slack Web API base URL

    @property
    def nlu_path(self) -> Path:
        return self.nlu_dir if self.nlu_dir is not None else self.models_dir / "nlu"

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

    # Escalation thresholds (see core.turn.policy.PolicyConfig).
    policy_negative_window: int = 3  # recent customer turns looked at for negative sentiment
    policy_negative_needed: int = 2  # negative turns in that window that escalate
    policy_worsening_turns: int = 3  # sentiment falling this many turns in a row (0: off)
    policy_low_confidence: float = 0.45  # understanding below this counts as not understood
    policy_low_confidence_turns: int = 3  # not understood this many turns in a row escalates
    policy_not_for_me_turns: int = 3  # "not for me" pressed this many times in a row escalates
    policy_complaint_window: int = 4  # recent customer turns looked at for complaints
    policy_complaints_needed: int = 2  # complaints in that window that escalate

    # The support team's side in a chat workspace: where tickets are posted, who may act.
    support_channel: str | None = None  # channel id tickets are posted to (a thread each)
    support_agents: list[str] = Field(
        default_factory=list, description="user ids allowed to claim, answer and close tickets"
    )
    support_agent_group: str | None = None  # a user group whose members may act, too
    support_summary: Literal["template", "llm"] = "template"  # llm: a briefing by the LLM_* model

    # The web desk and dashboard (`concierge web`): agents sign in with a login made by
    # `concierge web add-agent`. The session cookie is signed with this key; when unset, one
    # generated and kept in the store database (every desk process sharing the store uses it).
    web_host: str = "127.0.0.1"  # 0.0.0.0 only behind a TLS-terminating proxy
    web_port: int = 8080  # the desk's port
    web_session_secret: SecretStr | None = None  # signs session cookies; never logged
    web_session_hours: float = 12.0  # an agent is signed out after this long
    web_https_only: bool = False  # cookies only over HTTPS (set when served behind TLS)
    web_page_size: int = 50  # tickets per inbox page
    dashboard_days: int = 30  # days of figures the dashboard shows

    # Flower (`concierge flower`) asks for this user and password (HTTP basic auth).
    flower_user: str | None = None  # the Flower login; required unless --no-auth on loopback
    flower_password: SecretStr | None = None  # the Flower password; never logged

    def model_post_init(self, context: Any) -> None:
        keep_secrets(secrets_of(self))


def secrets_of(settings: Settings) -> frozenset[str]:
    """Every secret value in `settings`: each SecretStr (only its password when it is a URL,
    so a plain sqlite:/// path stays readable) and the password in every other URL setting,
    as written and percent-decoded."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
            found |= _url_passwords(text) if "://" in text else {text}
        elif isinstance(value, str) and "://" in value:
            found |= _url_passwords(value)
    return frozenset(value for value in found if value)


def _url_passwords(url: str) -> set[str]:
    try:
        password = urlsplit(url).password
    except ValueError:  # not a URL after all: keep all of it out of the logs
        return {url}
    return set() if password is None else {password, unquote(password)}


def settings_section(settings: Settings, prefix: str, config_type: type[C]) -> C:
    """The dataclass `config_type` with each field `name` taken from the setting `prefix + name`
    (fields without such a setting keep their default): `settings_section(s, "llm_", LlmConfig)`.
    """
    names = type(settings).model_fields
    values: dict[str, Any] = {
        field.name: getattr(settings, prefix + field.name)
        for field in fields(config_type)  # type: ignore[arg-type]
        if prefix + field.name in names
    }
    return config_type(**values)
