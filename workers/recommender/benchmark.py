"""Scoring speed: in-process latency, the round trip Celery and Redis add, one worker's
throughput under concurrent requests, and the worker's resident memory with the model loaded.

The catalog is whatever `settings.recommender_catalog` names (the Amazon Beauty items, 12k,
for the published figures). The Celery part starts one real worker process (one child) on the
configured broker and stops it at the end.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from core.infra.percentiles import median, percentile
from core.infra.settings import Settings
from core.turn.recommendation import RecommendationRequest
from workers.encoder import configure_torch


def benchmark_command(
    settings: Settings, model_dir: Path | None, requests: int, concurrency: int, celery: bool
) -> dict[str, Any]:
    """Scoring figures of the model in `model_dir` (None: the settings' recommender_dir)."""
    from workers.recommender.service import ScoringService

    if model_dir is not None:
        settings = settings.model_copy(update={"recommender_dir": model_dir})
    configure_torch(settings.worker_threads)
    service = ScoringService.from_settings(settings)
    batch = _requests(service, requests)
    for request in batch:
        service.recommend(request)  # warm the code paths and the request-text cache

    summary: dict[str, Any] = {
        "items": len(service.model.config.item_ids),
        "requests": requests,
        "torch_threads": torch.get_num_threads(),
    }
    # Cold: every request text is new, so it is encoded by MiniLM inside the measured call.
    fresh = [r.model_copy(update={"text": f"{r.text} {n}"}) for n, r in enumerate(batch)]
    summary["inprocess_cold_text_ms"] = _latencies(service.recommend, fresh)
    # Warm: the same texts again (a customer refining a request), embeddings cached.
    summary["inprocess_ms"] = _latencies(service.recommend, batch)
    summary["model_only_ms"] = _model_only(service, batch)
    print(
        f"items in catalog: {summary['items']}, requests: {requests}, torch threads: "
        f"{summary['torch_threads']}"
    )
    for key, label in (
        ("inprocess_ms", "in-process recommend (text embedding cached)"),
        ("inprocess_cold_text_ms", "in-process recommend incl. MiniLM encoding"),
        ("model_only_ms", "model scoring of the candidate pool only"),
    ):
        figures = summary[key]
        print(f"{label:<50} median {figures['median']:7.2f} ms   p95 {figures['p95']:7.2f} ms")
    pool = summary["model_only_ms"]["candidates_median"]
    print(f"{'candidates the model ranks per request':<50} median {pool:g}")
    if celery:
        summary |= _celery(settings, batch, concurrency, summary["inprocess_ms"]["median"])
    return summary


def _requests(service: Any, count: int) -> list[RecommendationRequest]:
    """Real customers of the catalog's history with a short request text from a real item."""
    rng = random.Random(3)
    users = sorted(service._histories)
    products = [p for p in service._products if p is not None]
    batch = []
    for _ in range(count):
        product = rng.choice(products)
        words = (product.subcategory or product.title).split()[:3]
        batch.append(
            RecommendationRequest(
                user_id=rng.choice(users) if users else "new",
                text=" ".join(words).lower(),
                budget_max=rng.choice([None, 20.0, 50.0]),
                k=3,
            )
        )
    return batch


def _latencies(call: Any, batch: list[RecommendationRequest]) -> dict[str, float]:
    times = []
    for request in batch:
        started = time.perf_counter()
        call(request)
        times.append((time.perf_counter() - started) * 1000)
    return _stats(times)


def _model_only(service: Any, batch: list[RecommendationRequest]) -> dict[str, float]:
    """The model's share of a real request: the transformer scoring the candidate pool that
    `recommend` hands it (at most `ServiceConfig.candidates` items), not the whole catalog."""
    times, sizes = [], []
    with torch.inference_mode():
        for request in batch:
            pool = service.candidate_pool(request)
            if pool is None:
                continue  # nothing allowed: recommend() never calls the model
            started = time.perf_counter()
            service.model_scores(pool)
            times.append((time.perf_counter() - started) * 1000)
            sizes.append(len(pool.items))
    return _stats(times) | {"candidates_median": median(sizes)}


def _stats(times: list[float]) -> dict[str, float]:
    return {"median": round(median(times), 3), "p95": round(percentile(times, 95), 3)}


def _celery(
    settings: Settings, batch: list[RecommendationRequest], concurrency: int, inprocess: float
) -> dict[str, Any]:
    from workers.app import build_app
    from workers.client import CeleryRecommender

    env = {
        **os.environ,
        "CONCIERGE_RECOMMENDER_DIR": str(settings.recommender_dir),
        "CONCIERGE_RECOMMENDER_CATALOG": settings.recommender_catalog,
        "CONCIERGE_CELERY_BROKER_URL": settings.celery_broker_url,
        "CONCIERGE_CELERY_RESULT_BACKEND": settings.celery_result_backend,
        "CONCIERGE_CELERY_QUEUE": settings.celery_queue,
        "CONCIERGE_WORKER_THREADS": str(settings.worker_threads),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--concurrency=1",
            "--pool=prefork",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-{os.getpid()}@%h",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        client_settings = settings.model_copy(update={"score_timeout_s": 120.0})
        client = CeleryRecommender(client_settings, build_app(client_settings))
        client.recommend(batch[0])  # the worker loads the model on its first job
        for request in batch:
            client.recommend(request)  # same texts as measured: the worker's cache is warm
        round_trip = _latencies(client.recommend, batch)
        rss = _rss_mb(worker.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(client.recommend, batch))
        wall = time.perf_counter() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    added = round(round_trip["median"] - inprocess, 3)
    throughput = round(len(batch) / wall, 1)
    print(
        f"{'Celery round trip (client to worker and back)':<50} median "
        f"{round_trip['median']:7.2f} ms   p95 {round_trip['p95']:7.2f} ms"
    )
    print(f"{'added by Celery + Redis (median difference)':<50} {added:7.2f} ms")
    print(f"one worker process, {concurrency} concurrent clients: {throughput} requests/s")
    print(
        f"worker resident memory: parent {rss['parent']:.0f} MB, "
        f"child with model {rss['child']:.0f} MB"
    )
    return {
        "celery_round_trip_ms": round_trip,
        "celery_added_ms": added,
        "worker_throughput_rps": throughput,
        "concurrency": concurrency,
        "worker_rss_mb": rss,
    }


def _rss_mb(parent: int) -> dict[str, float]:
    """Resident memory of the worker's main process and of its (single) pool child."""
    children_path = Path(f"/proc/{parent}/task/{parent}/children")
    children = (
        [int(pid) for pid in children_path.read_text().split()] if children_path.exists() else []
    )
    child = max((_rss_of(pid) for pid in children), default=0.0)
    return {"parent": _rss_of(parent), "child": child}


def _rss_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0
