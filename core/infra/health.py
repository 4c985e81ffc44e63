"""A tiny HTTP server each long-running process starts: /healthz and /metrics.

/healthz answers 200 with a JSON body while the process takes work, 503 once it is draining
for shutdown or a check fails (so an orchestrator stops routing to it). /metrics serves the
Prometheus registry (`core.infra.metrics`). It binds 127.0.0.1 unless configured otherwise and runs
in a daemon thread, so it never holds a process open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from core.infra.logs import event
from core.infra.settings import Settings

log = logging.getLogger(__name__)

# A check returns None when healthy, else what is wrong in words.
Check = Callable[[], str | None]


class HealthServer:
    def __init__(
        self, host: str, port: int, role: str, checks: Mapping[str, Check] | None = None
    ) -> None:
        self.role = role
        self.checks = dict(checks or {})
        self.started = time.time()
        self.draining = False
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HealthServer:
        self._thread.start()
        event(log, "health.listening", role=self.role, url=self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def drain(self) -> None:
        """From now on /healthz says 503: the process finishes what it has and takes no more."""
        self.draining = True

    def status(self) -> tuple[int, dict[str, object]]:
        failures: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:  # a broken check is an unhealthy process, not a crash
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                failures[name] = problem
        state = "draining" if self.draining else ("failing" if failures else "ok")
        body: dict[str, object] = {
            "status": state,
            "role": self.role,
            "uptime_s": round(time.time() - self.started, 1),
            "checks": {name: failures.get(name, "ok") for name in self.checks},
        }
        return (200 if state == "ok" else 503), body


def _handler_for(health: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                code, body = health.status()
                self._send(code, "application/json", json.dumps(body).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            else:
                self._send(404, "text/plain", b"not found: try /healthz or /metrics\n")

        def _send(self, code: int, content_type: str, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            # Scrapes every few seconds would drown the turn logs.
            return

    return Handler


def serve(
    settings: Settings, role: str, checks: Mapping[str, Check] | None = None
) -> HealthServer | None:
    """Start the health and metrics server if `metrics_port` is set; None when it is 0."""
    if settings.metrics_port == 0:
        return None
    try:
        server = HealthServer(settings.metrics_host, settings.metrics_port, role, checks)
    except OSError as exc:
        raise OSError(
            f"cannot serve health and metrics on {settings.metrics_host}:"
            f"{settings.metrics_port} ({exc.strerror}); choose another CONCIERGE_METRICS_PORT"
        ) from exc
    return server.start()


_versions: dict[tuple[str, int, int], str] = {}


def model_version(folder: Path) -> str | None:
    """A short content hash of a model folder's files: the same on every host that has the same
    model, so the doctor can tell which model each worker serves. None when nothing is built."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _versions:
            file_digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(block)
            _versions[key] = file_digest.hexdigest()
        digest.update(f"{path.relative_to(folder)}\0{_versions[key]}\0".encode())
    return digest.hexdigest()[:12]


MODEL_CARD = "card.json"  # what training measured, beside a model's checkpoint


def model_card(folder: Path) -> dict[str, object] | None:
    """The card training wrote beside a model (its held-out figures, when and on what it was
    trained); None when there is none or it cannot be read."""
    try:
        card = json.loads((folder / MODEL_CARD).read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None
