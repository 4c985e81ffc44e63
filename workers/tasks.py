"""Celery tasks: thin, named, JSON in and out. The scoring service loads lazily, once per
worker child process, on the first job (never in the parent before the fork)."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init

from core.infra.logs import event
from core.infra.settings import Settings
from core.turn.recommendation import RecommendationRequest
from workers.app import LEARN_TASK, RETRAIN_TASK, SCORE_MANY_TASK, SCORE_TASK
from workers.encoder import configure_torch
from workers.recommender.bandit import BanditLearner
from workers.recommender.service import ScoringService

log = logging.getLogger(__name__)


def _settings(task: Task) -> Settings:
    settings = task.app.conf.get("concierge_settings")
    return settings if isinstance(settings, Settings) else Settings()


@worker_process_init.connect
def _set_threads(**_: Any) -> None:
    """Each child process gets its own torch thread count (forked children inherit none)."""
    from celery import current_app

    configure_torch(_settings(current_app.tasks[SCORE_TASK]).worker_threads)


class ScoringTask(Task):
    """Base for tasks that need the model: one `ScoringService` per process."""

    @cached_property
    def service(self) -> ScoringService:
        settings = _settings(self)
        configure_torch(settings.worker_threads)
        service = ScoringService.from_settings(settings)
        event(log, "worker.model_loaded", model=str(settings.recommender_dir))
        return service


@shared_task(name=SCORE_TASK, base=ScoringTask, bind=True)
def score(self: ScoringTask, request: dict[str, Any]) -> list[dict[str, Any]]:
    """One recommendation request -> its suggestions with evidence."""
    parsed = RecommendationRequest.model_validate(request)
    return [s.model_dump(mode="json") for s in self.service.recommend(parsed)]


@shared_task(name=SCORE_MANY_TASK, base=ScoringTask, bind=True)
def score_many(self: ScoringTask, requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Many requests in one job (bulk suggestions, e.g. for a mailing): one round trip."""
    parsed = [RecommendationRequest.model_validate(r) for r in requests]
    return [
        [s.model_dump(mode="json") for s in batch] for batch in self.service.recommend_many(parsed)
    ]


class LearningTask(Task):
    """Base for the bandit's updates: one connection to the store database per process."""

    @cached_property
    def learner(self) -> BanditLearner:
        from core.shopdb.database import ShopDatabase
        from core.shopdb.learning import LearningStore

        settings = _settings(self)
        return BanditLearner(LearningStore(ShopDatabase(settings.store_url.get_secret_value())))


@shared_task(name=LEARN_TASK, base=LearningTask, bind=True, ignore_result=True)
def learn(self: LearningTask, slate: str, position: int | None, kind: str | None) -> None:
    """A shown slate's outcome: logged once, and the posterior updated (a redelivered job
    finds the slate closed and changes nothing)."""
    self.learner.close(slate, position, kind)


# Training runs for minutes: the scoring jobs' time limit does not apply.
@shared_task(name=RETRAIN_TASK, bind=True, ignore_result=True, time_limit=4 * 3600,
             soft_time_limit=4 * 3600 - 60)
def retrain_recommender(self: Task) -> dict[str, Any]:
    """One retrain-evaluate-promote cycle (the beat schedule's); scoring workers load a
    promoted model by themselves."""
    from workers.recommender.cli import store_data
    from workers.recommender.retrain import retrain

    settings = _settings(self)
    configure_torch(settings.worker_threads)
    return retrain(settings, store_data(settings)).as_json()
