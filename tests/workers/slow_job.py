"""A job that takes a set time and leaves a mark when it completes: lets a test stop a real
`concierge worker` in the middle of a job. Loaded with `concierge worker --include=...`."""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task

SLOW_TASK = "workers.test_slow_job"  # under workers.*, so the app routes it like a scoring job


@shared_task(name=SLOW_TASK)
def slow_job(mark: str, seconds: float) -> str:
    Path(mark).with_suffix(".started").write_text("started")
    time.sleep(seconds)
    Path(mark).write_text("done")
    return mark
