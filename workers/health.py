"""Operations hooks for `concierge worker`: health and metrics over HTTP, and the model
version a worker serves (asked for by `concierge doctor`).

Imported by the worker through the Celery app's `include`, so the hooks connect in the worker's
main process. Scoring happens in forked children; their job latency is measured by the callers
(`concierge_recommender_job_seconds` in the bot processes), and the queue depth is read from the
broker at scrape time, so no multiprocess metrics store is needed.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down
from celery.worker.control import inspect_command

from core.infra import metrics
from core.infra.health import HealthServer, model_version, serve
from core.infra.logs import event
from core.infra.settings import Settings
from workers.recommender.versions import Registry

log = logging.getLogger(__name__)

MODELS_COMMAND = "concierge_models"
_server: list[HealthServer] = []


def _settings(app: Celery) -> Settings:
    settings = app.conf.get("concierge_settings")
    return settings if isinstance(settings, Settings) else Settings()


def served_models(settings: Settings) -> dict[str, dict[str, str | None]]:
    """What this worker scores with: each model folder and the content hash of its files."""
    folder = settings.recommender_dir
    return {"recommender": {"path": str(folder), "version": model_version(folder),
                            "promoted": Registry(folder).served()}}


@inspect_command(name=MODELS_COMMAND)
def concierge_models(state: Any, **_: Any) -> dict[str, dict[str, str | None]]:
    return served_models(_settings(state.consumer.app))


def _broker_check(app: Celery) -> Any:
    def check() -> str | None:
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=1.0)
        except Exception as exc:  # any transport error means the worker cannot get jobs
            return f"broker unreachable: {exc}"
        return None

    return check


@worker_ready.connect
def _start_health(sender: Any, **_: Any) -> None:
    app: Celery = sender.app
    settings = _settings(app)
    queue = str(app.conf.task_default_queue)
    metrics.watch_queues(settings.celery_broker_url, [queue])
    server = serve(settings, role="worker", checks={"broker": _broker_check(app)})
    if server is not None:
        _server.append(server)
    event(log, "worker.ready", models=served_models(settings))


@worker_shutting_down.connect
def _drain(**_: Any) -> None:
    for server in _server:
        server.drain()
