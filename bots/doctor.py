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

from pydantic import SecretStr, ValidationError

from core.infra.commands import CommandHelp
from core.infra.health import model_version
from core.infra.logs import configure
from core.infra.redis_client import redacted, redis_client
from core.infra.settings import Settings

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


def check_redis(check: str, url: str, env: str) -> Finding:
    import redis

    try:
        client = redis_client(url, TIMEOUT_S)
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


def check_store(settings: Settings) -> Finding:
    from core.infra.errors import StoreNotReady
    from core.shopdb.database import ShopDatabase

    database = ShopDatabase(settings.store_url.get_secret_value())
    try:
        database.check_ready()
        counts = database.counts()
    except StoreNotReady as exc:
        return fail("store", str(exc),
                    "import a store: `concierge store import --demo`, or your own files "
                    "(`concierge store import --help`)")
    finally:
        database.close()
    if not counts["products"]:
        return fail("store", f"the store database {database.shown} has no products",
                    "import a store: `concierge store import --demo`, or your own files")
    return ok("store", f"{database.shown}: {counts['products']:,} products, "
                       f"{counts['orders']:,} orders, {counts['articles']:,} articles")


def check_sqlite(path: Path) -> Finding:
    from core.infra.errors import StoreUnavailable
    from core.state.sqlite import SqliteStateStore

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
    from workers.recommender.versions import Registry

    served = Registry(folder).served()
    promoted = f", promoted version {served}" if served else ""
    return ok(check, f"{folder} (version {version}{promoted})")


def check_workers(settings: Settings) -> Finding:
    """Workers answer a ping on the broker, and say which model version they serve."""
    from kombu.exceptions import KombuError

    from workers.app import build_app
    from workers.health import MODELS_COMMAND

    app = build_app(settings)
    broker = redacted(settings.celery_broker_url)
    try:
        pings = app.control.ping(timeout=TIMEOUT_S)
        served = app.control.broadcast(MODELS_COMMAND, reply=True, timeout=TIMEOUT_S)
    except (OSError, KombuError) as exc:
        return fail("workers", f"cannot reach the broker {broker}: {exc}",
                    "start Redis or fix CONCIERGE_CELERY_BROKER_URL")
    finally:
        app.close()
    names = sorted(name for reply in pings for name in reply)
    if not names:
        return fail("workers", f"no worker answered a ping on {broker} within {TIMEOUT_S:.0f} s",
                    "start one (`concierge worker`, or `docker compose up -d worker`) with the "
                    "same CONCIERGE_CELERY_BROKER_URL as the bots")
    versions: dict[str, str] = {}
    for reply in served:
        for name, models in reply.items():
            versions[name] = str(models.get("recommender", {}).get("version"))
    local = model_version(settings.recommender_dir)
    listed = ", ".join(f"{name} (model {versions.get(name, 'unknown')})" for name in names)
    if len(set(versions.values())) > 1:
        return fail("workers", f"workers serve different models: {listed}",
                    "deploy the same model folder (CONCIERGE_RECOMMENDER_DIR) to every worker")
    served_version = next(iter(versions.values()), "unknown")
    if served_version == "None":
        return fail("workers", f"{listed}: no model in their CONCIERGE_RECOMMENDER_DIR",
                    "build it (`concierge train`) or mount it")
    note = "" if local is None or str(local) == served_version else (
        f"; this host has model {local}, the workers serve {served_version}")
    return ok("workers", f"{len(names)} answered: {listed}{note}")


def check_llm(settings: Settings) -> Finding:
    """The endpoint answers an understanding request with output that fits the schema."""
    from dataclasses import replace

    from core.llm.client import LlmClient, LlmConfig, LlmError
    from core.llm.understanders import Verdict, understanding_prompt, verdict_schema
    from core.state.store import ConversationState
    from core.turn.taxonomy import TaxonomyError, load_taxonomy

    base = settings.llm_base_url
    try:
        taxonomy = load_taxonomy(settings.nlu_taxonomy)
    except (TaxonomyError, OSError) as exc:
        return fail("llm", f"the intent taxonomy cannot be read: {exc}",
                    "set CONCIERGE_NLU_TAXONOMY to the intents file (data/nlu/intents.yaml)")
    config = replace(LlmConfig.from_settings(settings), retries=0)
    client = LlmClient(config)
    prompt = understanding_prompt(taxonomy, "where is my order 48213?",
                           ConversationState(conversation_id="doctor"))
    started = time.perf_counter()
    try:
        verdict = client.complete_json([{"role": "user", "content": prompt}], Verdict,
                                       verdict_schema(taxonomy.intent_names), name="understanding")
    except LlmError as exc:
        fixes = {
            "connection": f"start the server or correct CONCIERGE_LLM_BASE_URL (now {base})",
            "timeout": "the server is too slow: raise CONCIERGE_LLM_TIMEOUT_S or use a smaller "
                       "model",
            "client_error": "check CONCIERGE_LLM_MODEL and CONCIERGE_LLM_API_KEY (the server "
                            "refused the request)",
            "rate_limited": "the provider is rate limiting this key: wait or raise the limit",
            "server_error": "the server failed: see its logs",
            "invalid_json": "the model does not return JSON: use a server with JSON-schema "
                            "output (OpenAI, vLLM, llama.cpp server) or a stronger model",
            "schema": "the model's JSON does not fit the schema: use a server with JSON-schema "
                      "output or a stronger model",
        }
        return fail("llm", f"{base} gave no valid answer ({exc})",
                    fixes.get(exc.reason, "see the detail above"))
    ms = (time.perf_counter() - started) * 1000
    if verdict.intent not in taxonomy.intent_names:
        return fail("llm", f"{base} answered an intent not in the taxonomy: {verdict.intent!r}",
                    "use a server with JSON-schema output or a stronger model")
    mode = "JSON schema" if client.structured_output else "plain JSON"
    return ok("llm", f"{base} model {settings.llm_model} answered schema-valid output ({mode}) "
                     f"in {ms:.0f} ms")


def token_findings(settings: Settings, wanted: frozenset[str]) -> list[Finding]:
    telegram = "telegram" in wanted
    slack = "slack" in wanted
    botfather = "@BotFather (/token)"
    slack_app = "your Slack app's settings at api.slack.com/apps"
    findings = [
        check_token("telegram", "CONCIERGE_TELEGRAM_TOKEN", settings.telegram_token, telegram,
                    telegram_token_problem, botfather),
        check_token("slack bot", "CONCIERGE_SLACK_BOT_TOKEN", settings.slack_bot_token, slack,
                    lambda v: slack_token_problem(v, "xoxb-"),
                    f"{slack_app} > OAuth & Permissions > Bot User OAuth Token"),
    ]
    socket_mode = settings.slack_mode == "socket"
    findings.append(check_token(
        "slack app", "CONCIERGE_SLACK_APP_TOKEN", settings.slack_app_token, slack and socket_mode,
        lambda v: slack_token_problem(v, "xapp-"),
        f"{slack_app} > Basic Information > App-Level Tokens (scope connections:write)"))
    findings.append(check_token(
        "slack signing", "CONCIERGE_SLACK_SIGNING_SECRET", settings.slack_signing_secret,
        slack and not socket_mode, signing_secret_problem,
        f"{slack_app} > Basic Information > Signing Secret"))
    return findings


def check_webhook(settings: Settings) -> Finding:
    """A webhook's secret is its own, never derived from the token (see bots.telegram)."""
    if not settings.telegram_webhook_url:
        return skip("telegram webhook", "CONCIERGE_TELEGRAM_WEBHOOK_URL not set (long polling)")
    from bots.telegram import webhook_secret

    try:
        webhook_secret(settings)
    except ValueError as problem:
        return fail("telegram webhook", str(problem),
                    "set CONCIERGE_TELEGRAM_WEBHOOK_SECRET in .env (`openssl rand -hex 32`)")
    return ok("telegram webhook", "CONCIERGE_TELEGRAM_WEBHOOK_SECRET is set and well-formed")


def check_flower_login(settings: Settings) -> Finding:
    password = settings.flower_password
    if settings.flower_user and password is not None and password.get_secret_value():
        return ok("flower login", "CONCIERGE_FLOWER_USER and CONCIERGE_FLOWER_PASSWORD are set")
    return fail("flower login", "CONCIERGE_FLOWER_USER or CONCIERGE_FLOWER_PASSWORD is not set: "
                                "`concierge flower` refuses to start without a login",
                "set both in .env (Flower shows customers' requests)")


# -- the whole examination -------------------------------------------------------------------


def examine(settings: Settings, roles: Iterable[str] = ()) -> list[Finding]:
    wanted = frozenset(roles)
    findings = [check_store(settings)]
    if settings.state_backend == "redis":
        findings.append(check_redis("state", settings.redis_url, "CONCIERGE_REDIS_URL"))
    else:
        findings.append(check_sqlite(settings.sqlite_path))
    findings.extend(check_models(settings, wanted))
    findings.extend(token_findings(settings, wanted))
    if "telegram" in wanted or settings.telegram_webhook_url:
        findings.append(check_webhook(settings))
    if "flower" in wanted:
        findings.append(check_flower_login(settings))
    uses_workers = settings.recommender == "celery" or wanted & {"worker", "flower"}
    if uses_workers:
        broker = check_redis("broker", settings.celery_broker_url, "CONCIERGE_CELERY_BROKER_URL")
        findings.append(broker)
        if broker.status == "ok" and settings.recommender == "celery":
            findings.append(check_workers(settings))
    if settings.understander in ("llm", "cascade"):
        findings.append(check_llm(settings))
    return findings


def check_models(settings: Settings, wanted: frozenset[str]) -> list[Finding]:
    findings = []
    if settings.understander in ("local", "cascade"):
        findings.append(check_model("nlu model", settings.nlu_path, "CONCIERGE_NLU_DIR",
                                    "concierge train"))
    if settings.recommender == "inprocess" or "worker" in wanted:
        findings.append(check_model("recommender model", settings.recommender_dir,
                                    "CONCIERGE_RECOMMENDER_DIR",
                                    "concierge train"))
    return findings


def report_text(findings: Sequence[Finding]) -> str:
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
                                     formatter_class=CommandHelp)
    parser.add_argument("--for", dest="roles", action="append", choices=ROLES, default=[],
                        help="a process that will run with these settings (repeatable): its "
                             "required settings must be present (default: none, so only "
                             "what the settings ask for is checked)")
    parser.add_argument("--json", action="store_true", help="one JSON object per check")
    args = parser.parse_args(argv)
    # The findings say what went wrong; library warnings on stderr would only repeat them.
    configure(level="ERROR")
    try:
        settings = Settings()
    except ValidationError as exc:
        findings = explain_settings_error(exc)
        print(report_text(findings))
        return 2
    findings = examine(settings, args.roles)
    if args.json:
        for finding in findings:
            print(json.dumps(asdict(finding)))
    else:
        print(report_text(findings))
    return 1 if any(f.status == "fail" for f in findings) else 0


def health_main(argv: Sequence[str] | None = None) -> int:
    """`concierge health`: asks this host's process for /healthz; exit 0 only on 200. Used as
    the container health check."""
    parser = argparse.ArgumentParser(prog="concierge health", description=health_main.__doc__,
                                     formatter_class=CommandHelp)
    parser.add_argument("--url", help="the health address to ask (default: "
                                      "http://127.0.0.1:$CONCIERGE_METRICS_PORT/healthz)")
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
