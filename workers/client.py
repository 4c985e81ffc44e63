"""`CeleryRecommender`: core's `Recommender`, answered by scoring workers over Redis.

Bot processes use this; it sends jobs by task name and so never imports torch or the model.
Whatever goes wrong (broker down, no worker, a slow worker) ends in `RecommenderUnavailable`
within the configured timeout, never in a hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from celery import Celery, states
from celery.exceptions import CeleryError
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError

from core.infra.logs import event
from core.infra.settings import Settings
from core.turn.recommendation import RecommendationRequest, RecommenderUnavailable, Suggestion
from workers.app import LEARN_TASK, SCORE_TASK, build_app

log = logging.getLogger(__name__)


class CeleryRecommender:
    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self._settings = settings
        self._app = app or build_app(settings)
        self._timeout = settings.score_timeout_s

    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        started = time.perf_counter()
        result = None
        try:
            result = self._app.send_task(
                SCORE_TASK,
                args=[request.model_dump(mode="json")],
                queue=self._settings.celery_queue,
                # A job nobody picked up in time is dropped: the customer has been answered.
                expires=self._timeout,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2},
            )
            payload = result.get(timeout=self._timeout, interval=0.01, propagate=False)
            self.check_answered(result, payload, started)
        except RecommenderUnavailable:
            raise
        except ResultTimeout as error:
            raise self._unavailable("no scoring worker answered in time", started) from error
        except (OperationalError, KombuError, RedisError, OSError) as error:
            raise self._unavailable(f"broker unreachable: {error}", started) from error
        except RuntimeError as error:
            # Celery's Redis result consumer gives up reconnecting with a RuntimeError and
            # stays broken: the next request starts from a fresh app.
            self._app = build_app(self._settings)
            raise self._unavailable(f"broker/result store unreachable: {error}", started) from error
        except CeleryError as error:
            raise self._unavailable(f"scoring job failed: {error}", started) from error
        finally:
            if result is not None:
                _forget(result)
        suggestions = [Suggestion.model_validate(item) for item in payload]
        event(
            log,
            "recommender.celery.done",
            user=request.user_id,
            count=len(suggestions),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return suggestions

    def check_answered(self, result: AsyncResult, payload: object, started: float) -> None:
        """RecommenderUnavailable unless the job ran and returned suggestions. A job can
        also fail (the worker ran it and it raised: a bug or a broken model) or be revoked:
        under load a job can wait in the queue past its expiry, and the worker that takes
        it then drops it; its payload is then the exception, never suggestions."""
        if result.successful():
            return
        if result.state == states.REVOKED:
            raise self._unavailable("scoring job expired in the queue (workers busy)", started)
        raise self._unavailable(f"scoring job {result.state.lower()}: {payload!r:.300}", started)

    def _unavailable(self, reason: str, started: float) -> RecommenderUnavailable:
        ms = round((time.perf_counter() - started) * 1000, 1)
        event(log, "recommender.celery.unavailable", level=logging.WARNING, reason=reason, ms=ms)
        return RecommenderUnavailable(reason)


def _forget(result: object) -> None:
    """Drop the stored result; it expires anyway, so a broker error here changes nothing."""
    try:
        result.forget()  # type: ignore[attr-defined]
    except (RedisError, OSError, KombuError) as error:
        event(log, "recommender.celery.forget_failed", level=logging.DEBUG, error=str(error))


class CeleryLearner:
    """core's `SlateOutcomes`: each closed slate becomes a `workers.learn` job. Sent and not
    waited for; a broker that is down costs that one update, logged, never the turn."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self._settings = settings
        self._app = app or build_app(settings)

    def close(self, slate: str, position: int | None, kind: str | None) -> None:
        try:
            self._app.send_task(LEARN_TASK, args=[slate, position, kind],
                                queue=self._settings.celery_queue, ignore_result=True,
                                retry=True, retry_policy={"max_retries": 1})
        except (OperationalError, KombuError, RedisError, OSError, CeleryError) as error:
            event(log, "bandit.update_not_sent", logging.WARNING, error=type(error).__name__)
