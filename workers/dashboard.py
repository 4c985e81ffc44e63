"""`concierge flower`: Celery Flower on the project's broker, to watch queues and workers.

Flower shows every job's arguments (customers' request text) and can revoke jobs, so it asks
for a login: CONCIERGE_FLOWER_USER and CONCIERGE_FLOWER_PASSWORD (HTTP basic auth). Without
them it refuses to start, unless `--no-auth` and it listens on the loopback interface only.
Binds 127.0.0.1:5555 unless `--address`/`--port` say otherwise; further options pass on to
Flower.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from ipaddress import ip_address

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings

DEFAULT_PORT = 5555
# Flower's own ways to log in, passed through when given (they replace the settings' login).
AUTH_OPTIONS = ("--basic-auth", "--auth")


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ip_address(address).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def login_options(settings: Settings, address: str, no_auth: bool,
                  flower_args: Sequence[str]) -> list[str]:
    """Flower's login options for these settings, or ValueError saying why it must not start."""
    if any(arg.split("=", 1)[0] in AUTH_OPTIONS for arg in flower_args):
        return []
    user, password = settings.flower_user, settings.flower_password
    if user and password is not None and password.get_secret_value():
        if ":" in user:
            raise ValueError("CONCIERGE_FLOWER_USER must not contain ':'")
        return [f"--basic-auth={user}:{password.get_secret_value()}"]
    if no_auth and is_loopback(address):
        return []
    if no_auth:
        raise ValueError(f"--no-auth is only allowed on a loopback address, not {address}")
    raise ValueError("Flower shows customers' requests: set CONCIERGE_FLOWER_USER and "
                     "CONCIERGE_FLOWER_PASSWORD (or --no-auth on 127.0.0.1)")


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge flower", description=__doc__,
                                     formatter_class=CommandHelp, allow_abbrev=False)
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--no-auth", action="store_true",
                        help="no login (only with a loopback --address)")
    args, flower_args = parser.parse_known_args(list(argv or []))
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    try:
        login = login_options(settings, args.address, args.no_auth, flower_args)
    except ValueError as refusal:
        print(f"concierge flower: {refusal}", file=sys.stderr)
        return 2
    from workers.app import build_app

    app = build_app(settings)
    app.start(["flower", f"--address={args.address}", f"--port={args.port}", *login,
               *flower_args])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
