"""The Celery app, built from settings as one explicit configuration.

Delivery is at-least-once: a job is acknowledged only after it ran (`task_acks_late`), a job
whose worker process died is put back (`task_reject_on_worker_lost`), and one whose whole worker
vanished comes back after the broker's visibility timeout. Scoring is idempotent, so running a
job twice is harmless.
"""

from __future__ import annotations

from celery import Celery

from core.infra.settings import Settings

SCORE_TASK = "workers.score"
SCORE_MANY_TASK = "workers.score_many"
LEARN_TASK = "workers.learn"  # a shown slate's outcome updates the bandit
RETRAIN_TASK = "workers.retrain"  # retrain, evaluate, promote: on a queue of its own


def training_queue(settings: Settings) -> str:
    """Retraining takes minutes: it runs in `concierge beat`, never in a scoring worker."""
    return f"{settings.celery_queue}.train"


def build_app(settings: Settings) -> Celery:
    app = Celery(
        "concierge",
        broker=settings.celery_broker_url,
        backend=settings.celery_result_backend,
        # workers.health: /healthz and /metrics, and the model version the doctor asks for.
        include=["workers.tasks", "workers.health"],
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=settings.task_time_limit_s * 0.8,
        result_expires=settings.result_expires_s,
        task_default_queue=settings.celery_queue,
        task_routes={RETRAIN_TASK: {"queue": training_queue(settings)},
                     "workers.*": {"queue": settings.celery_queue}},
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        result_backend_transport_options={"retry_policy": {"max_retries": 1}},
        broker_connection_retry_on_startup=True,
        # A bot must learn quickly that the broker is down instead of retrying for minutes.
        broker_connection_timeout=2.0,
        redis_socket_connect_timeout=2.0,
        redis_socket_timeout=5.0,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_track_started=False,
    )
    if settings.retrain_every_s > 0:
        app.conf.beat_schedule = {"retrain-recommender": {
            "task": RETRAIN_TASK, "schedule": settings.retrain_every_s,
            "options": {"queue": training_queue(settings),
                        "expires": settings.retrain_every_s},  # missed runs do not pile up
        }}
    # The tasks read their settings here; forked worker children inherit the object.
    app.conf.concierge_settings = settings
    return app


def __getattr__(name: str) -> Celery:
    """`celery -A workers.app worker` asks for `app`: built on first use from the environment,
    so importing this module (as the client does) reads no settings."""
    if name in ("app", "celery"):
        built = build_app(Settings())
        globals()["app"] = built
        return built
    raise AttributeError(name)
