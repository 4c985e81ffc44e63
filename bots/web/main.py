"""`concierge web`: serve the desk and the dashboard; `concierge web add-agent`: let an agent in."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from core.infra.commands import CommandHelp
from core.infra.settings import Settings


def serve_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge web",
        description="The web desk for support agents and the shop's dashboard. Agents sign in "
        "with a login made by `concierge web add-agent`.",
        formatter_class=CommandHelp,
    )
    parser.add_argument("--host", default=None,
                        help="address to bind (default: CONCIERGE_WEB_HOST)")
    parser.add_argument("--port", type=int, default=None,
                        help="port to bind (default: CONCIERGE_WEB_PORT)")
    args = parser.parse_args(argv)
    import uvicorn

    from bots.web.app import build_web_app
    from bots.wiring import build_web_desk, configure_logging

    settings = Settings()
    configure_logging(settings)
    desk, secret = build_web_desk(settings)
    if not desk.sign_in.agents.logins():
        print("No agent can sign in yet: add one with `concierge web add-agent LOGIN --name NAME`.",
              file=sys.stderr)
    app = build_web_app(desk, secret, settings.web_session_hours, settings.web_https_only)
    host, port = args.host or settings.web_host, args.port or settings.web_port
    print(f"The desk is at http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    # log_config=None: uvicorn's lines go through Concierge's logging (and its secret filter).
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=int(settings.shutdown_grace_s))
    return 0


def add_agent_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="concierge web add-agent",
        description="Add an agent who may sign in to the web desk (or set a new password "
        "with --reset). The password is asked for, never taken from the command line.",
        formatter_class=CommandHelp,
    )
    parser.add_argument("login", help="what the agent types to sign in")
    parser.add_argument("--name", default=None, help="the name customers see (default: login)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin (for scripts)")
    parser.add_argument("--reset", action="store_true",
                        help="set a new password for an existing agent")
    args = parser.parse_args(argv)
    from bots.web.auth import MIN_PASSWORD, hash_password
    from bots.wiring import open_store
    from core.shopdb.agents import DeskAgent, SqlAgents

    login = args.login.strip()
    if not login or len(login) > 64 or any(c.isspace() for c in login):
        print("A login is 1 to 64 characters without spaces.", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {login}: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ; nothing was changed.", file=sys.stderr)
            return 2
    if len(password) < MIN_PASSWORD:
        print(f"A password needs at least {MIN_PASSWORD} characters; nothing was changed.",
              file=sys.stderr)
        return 2
    database = open_store(Settings())
    database.check_ready()
    agents = SqlAgents(database)
    if args.reset:
        if not agents.set_password(login, hash_password(password)):
            print(f"There is no agent {login!r}.", file=sys.stderr)
            return 1
        print(f"New password set for {login}.")
        return 0
    if not agents.add(DeskAgent(login=login, name=args.name or login,
                            password_hash=hash_password(password))):
        print(f"The login {login!r} is taken (use --reset to set a new password).",
              file=sys.stderr)
        return 1
    print(f"Agent {login} added: sign in at the desk (`concierge web`).")
    return 0
