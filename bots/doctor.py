"""`concierge doctor`: checks the configuration you filled in and says what is wrong and how
to fix it. Exit code 0 when every check passes, 1 when any fails, 2 when the settings cannot be
read at all.

Each check looks at what the settings ask for: Redis only when something uses it, workers only
with `recommender=celery`, the LLM only with `understander=llm|cascade`, a platform's tokens
when they are set or when `--for PLATFORM` says that process will run here.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr, ValidationError

from core.health import model_version
from core.settings import Settings

Status = Literal["ok", "fail", "skip"]
ROLES = ("chat", "telegram", "slack", "worker", "flower")
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "fail", detail, fix)


def skip(check: str, detail: str) -> Finding:
    return Finding(check, "skip", detail)


# -- tokens: the shape each platform gives out, described without ever echoing the secret -----

TELEGRAM_TOKEN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{35}$")
SLACK_BOT_TOKEN = re.compile(r"^xoxb-[A-Za-z0-9-]+$")
SLACK_APP_TOKEN = re.compile(r"^xapp-[A-Za-z0-9-]+$")
SLACK_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32}$")


def _wrapped(value: str) -> str | None:
    if value != value.strip():
        return "has spaces or a line break around it"
    if value[:1] in "\"'" or value[-1:] in "\"'":
        return "is wrapped in quotes"
    return None


def telegram_token_problem(value: str) -> str | None:
    """None when `value` looks like a Bot API token (`<bot id>:<35 characters>`)."""
    if (problem := _wrapped(value)) is not None:
        return problem
    if TELEGRAM_TOKEN.match(value):
        return None
    if ":" not in value:
        return f"has no ':' ({len(value)} characters); a bot token is <bot id>:<35 characters>"
    bot_id, _, secret = value.partition(":")
    if not bot_id.isdigit():
        return "does not start with the bot's numeric id before the ':'"
    return (f"has {len(secret)} characters after the ':' (expected 35 letters, digits, "
            "'_' or '-')")


def slack_token_problem(value: str, prefix: str) -> str | None:
    """None when `value` is a Slack token of the kind `prefix` (xoxb- or xapp-)."""
    if (problem := _wrapped(value)) is not None:
        return problem
    pattern = SLACK_BOT_TOKEN if prefix == "xoxb-" else SLACK_APP_TOKEN
    if pattern.match(value):
        return None
    kinds = {"xoxp-": "a user token", "xoxb-": "a bot token", "xapp-": "an app-level token",
             "xoxe": "a refresh token"}
    for start, kind in kinds.items():
        if value.startswith(start) and start != prefix:
            return f"is {kind} ({start}...), not the {prefix} token needed here"
    if value.startswith(prefix):
        return "has characters a Slack token never has"
    return f"does not start with {prefix}"


def signing_secret_problem(value: str) -> str | None:
    if (problem := _wrapped(value)) is not None:
        return problem
    if SLACK_SIGNING_SECRET.match(value):
        return None
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        return f"is {len(value)} hexadecimal characters (expected 32, lower case)"
    return "is not hexadecimal (expected 32 characters 0-9 a-f)"


def check_token(
    check: str, env: str, value: SecretStr | None, required: bool,
    problem: Callable[[str], str | None], where: str,
) -> Finding:
    if value is None or not value.get_secret_value():
        if required:
            return fail(check, f"{env} is not set", f"set {env} in .env ({where})")
        return skip(check, f"{env} not set")
    found = problem(value.get_secret_value())
    if found is None:
        return ok(check, f"{env} is well-formed")
    return fail(check, f"{env} {found}", f"copy it again from {where}")


# -- services --------------------------------------------------------------------------------


def redacted(url: str) -> str:
    """A URL fit for output: the password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis(check: str, url: str, env: str) -> Finding:
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
        )
        started = time.perf_counter()
        client.ping()
        ms = (time.perf_counter() - started) * 1000
        client.close()
    except ValueError as exc:
        return fail(check, f"{env}={redacted(url)} is not a Redis URL ({exc})",
                    f"write it as redis://HOST:6379/DB in {env}")
    except redis.AuthenticationError as exc:
        return fail(check, f"Redis at {redacted(url)} refused the password ({exc})",
                    f"put the right password in {env} (redis://:PASSWORD@HOST:6379/DB)")
    except redis.RedisError as exc:
        return fail(check, f"Redis at {redacted(url)} is not reachable ({exc})",
                    f"start Redis (`redis-server`, or `docker compose up -d redis`) or fix {env}")
    return ok(check, f"{redacted(url)} answered PING in {ms:.1f} ms")


def check_demo_store(settings: Settings) -> Finding:
    from core.demo_store import load_store
    from core.jsonl import StoreDataError

    try:
        store = load_store(settings.demo_dir)
    except (StoreDataError, OSError) as exc:
        return fail("data", f"the demo store in {settings.demo_dir} cannot be read: {exc}",
                    "set CONCIERGE_DEMO_DIR to a folder with catalog.jsonl, orders.jsonl and "
                    "faq.jsonl (data/demo in the repository: `git checkout data/demo`)")
    products = len(list(store.catalog.all()))
    return ok("data", f"demo store in {settings.demo_dir}: {products} products")


def check_sqlite(path: Path) -> Finding:
    from core.sqlite_store import SqliteStateStore
    from core.state import StoreUnavailable

    try:
        SqliteStateStore(path)
    except StoreUnavailable as exc:
        return fail("state", str(exc), "set CONCIERGE_SQLITE_PATH to a writable file path")
    except sqlite3.Error as exc:
        return fail("state", f"the state file {path} cannot be used: {exc}",
                    "set CONCIERGE_SQLITE_PATH to a writable file path")
    return ok("state", f"SQLite state file {path} is writable")


def check_model(check: str, folder: Path, env: str, build: str) -> Finding:
    version = model_version(folder)
    if version is None:
        return fail(check, f"no model in {folder}",
                    f"build it with `{build}`, or point {env} at a built one")
    return ok(check, f"{folder} (version {version})")


# -- the whole examination -------------------------------------------------------------------


def examine(settings: Settings, roles: Iterable[str] = ()) -> list[Finding]:
    wanted = frozenset(roles)
    findings = [check_demo_store(settings)]
    if settings.state_backend == "redis":
        findings.append(check_redis("state", settings.redis_url, "CONCIERGE_REDIS_URL"))
    else:
        findings.append(check_sqlite(settings.sqlite_path))
    findings.extend(check_models(settings, wanted))
    return findings


def check_models(settings: Settings, wanted: frozenset[str]) -> list[Finding]:
    findings = []
    if settings.understander in ("local", "cascade"):
        findings.append(check_model("nlu model", settings.models_dir / "nlu",
                                    "CONCIERGE_MODELS_DIR", "concierge train nlu"))
    return findings


def render(findings: Sequence[Finding]) -> str:
    failed = sum(f.status == "fail" for f in findings)
    width = max((len(f.check) for f in findings), default=0)
    lines = []
    for finding in findings:
        mark = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}[finding.status]
        lines.append(f"{mark}  {finding.check:<{width}}  {finding.detail}")
        if finding.fix:
            lines.append(f"      {'':<{width}}  fix: {finding.fix}")
    verdict = (f"{failed} of {len(findings)} checks failed" if failed
               else f"all {len(findings)} checks passed")
    return "\n".join([*lines, "", f"concierge doctor: {verdict}"])


def explain_settings_error(error: ValidationError) -> list[Finding]:
    findings = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"])
        env = f"CONCIERGE_{name.upper()}"
        findings.append(fail("settings", f"{env}: {item['msg']}",
                             f"correct {env} in .env or the environment (see .env.example)"))
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--for", dest="roles", action="append", choices=ROLES, default=[],
                        help="a process that will run with these settings (repeatable): its "
                             "required settings must be present")
    parser.add_argument("--json", action="store_true", help="one JSON object per check")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        findings = explain_settings_error(exc)
        print(render(findings))
        return 2
    findings = examine(settings, args.roles)
    if args.json:
        for finding in findings:
            print(json.dumps(asdict(finding)))
    else:
        print(render(findings))
    return 1 if any(f.status == "fail" for f in findings) else 0


def health_main(argv: Sequence[str] | None = None) -> int:
    """`concierge health`: asks this host's process for /healthz; exit 0 only on 200. Used as
    the container health check."""
    parser = argparse.ArgumentParser(prog="concierge health", description=health_main.__doc__)
    parser.add_argument("--url", help="default: http://127.0.0.1:$CONCIERGE_METRICS_PORT/healthz")
    args = parser.parse_args(argv)
    url = args.url
    if url is None:
        settings = Settings()
        if settings.metrics_port == 0:
            print("concierge health: CONCIERGE_METRICS_PORT is 0, so nothing serves /healthz; "
                  "set it (e.g. 9100) for the process to check", file=sys.stderr)
            return 2
        url = f"http://127.0.0.1:{settings.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            print(response.read().decode(errors="replace").strip())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(errors="replace").strip())
        return 1
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        print(f"concierge health: {url} did not answer ({exc})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
