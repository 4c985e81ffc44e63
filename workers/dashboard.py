"""`concierge flower`: Celery Flower on the project's broker, to watch queues and workers.

Binds 127.0.0.1:5555 unless `--address`/`--port` say otherwise; further options pass on to
Flower (`--basic-auth=user:password` before exposing it anywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.infra.logs import configure
from core.infra.settings import Settings

DEFAULT_PORT = 5555


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    from workers.app import build_app

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    args = list(argv or [])
    if not any(arg.startswith("--address") for arg in args):
        args.append("--address=127.0.0.1")
    if not any(arg.startswith("--port") for arg in args):
        args.append(f"--port={DEFAULT_PORT}")
    app = build_app(settings)
    app.start(["flower", *args])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
