"""`concierge flower`: Celery Flower on the project's broker, to watch queues and workers.

Binds 127.0.0.1:5555 unless `--address`/`--port` say otherwise; further options pass on to
Flower (`--basic-auth=user:password` before exposing it anywhere).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings

DEFAULT_PORT = 5555


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge flower", description=__doc__,
                                     formatter_class=CommandHelp, allow_abbrev=False)
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    args, flower_args = parser.parse_known_args(list(argv or []))
    from workers.app import build_app

    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    app = build_app(settings)
    app.start(["flower", f"--address={args.address}", f"--port={args.port}", *flower_args])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
