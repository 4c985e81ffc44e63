"""The `concierge` command: one entry point, subcommands implemented by the modules that own them.

Each target is imported only when its command runs, so `concierge chat --help` stays fast and
a bot process imports no more than it uses.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from core.infra.errors import StoreNotReady

# command words -> "module:function"; the function takes the remaining argv and returns an
# exit code.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("chat",): ("bots.terminal:main", "chat with the store in the terminal"),
    ("telegram",): ("bots.telegram:main", "serve customers in Telegram (polling or webhook)"),
    ("slack",): (
        "bots.slack.app:main",
        "serve customers and agents in Slack (HTTP or Socket Mode)",
    ),
    ("agent",): ("bots.agent_console:main", "agent console: answer escalated conversations"),
    ("web",): ("bots.web.main:serve_main", "the web desk for agents and the shop's dashboard"),
    ("web", "add-agent"): ("bots.web.main:add_agent_main", "let an agent sign in to the web desk"),
    ("worker",): ("workers.recommender.cli:worker_main", "a Celery worker that scores products"),
    ("understand",): ("bots.understand:main", "JSON lines in, understanding out"),
    ("simulate",): (
        "bots.simulator:main",
        "simulated customers with hidden needs shop through the real conversation",
    ),
    ("train",): ("workers.cli:train_main", "train every model that is missing or out of date"),
    ("train", "nlu"): ("workers.nlu.cli:train_nlu_main", "train the local understanding model"),
    ("train", "recommender"): (
        "workers.recommender.cli:train_recommender_main",
        "train a recommender",
    ),
    ("eval", "nlu"): (
        "workers.nlu.cli:eval_nlu_main",
        "evaluate the understanding model on the held-out messages",
    ),
    ("eval", "recommender"): (
        "workers.recommender.cli:eval_recommender_main",
        "evaluate a recommender",
    ),
    ("eval", "policy"): (
        "workers.recommender.cli:eval_policy_main",
        "off-policy estimates of a ranking policy from logged slates",
    ),
    ("beat",): ("workers.recommender.cli:beat_main",
                "the schedule that retrains the recommender, with its worker"),
    ("model", "list"): ("workers.recommender.cli:model_list_main",
                        "the recommender's versions, the served one marked"),
    ("model", "rollback"): ("workers.recommender.cli:model_rollback_main",
                            "serve the recommender version promoted before this one"),
    ("model", "retrain"): ("workers.recommender.cli:model_retrain_main",
                           "retrain, evaluate against the served model, promote if better"),
    ("bench", "chat"): ("bots.terminal:bench_chat", "per-turn latency of the terminal chat"),
    ("bench", "handover"): (
        "bots.agent_console:bench_handover",
        "agent reply -> customer delivery across processes",
    ),
    ("bench", "store"): (
        "bots.store:bench_main",
        "store import rows/s, order lookups at 1M orders, suggestion latency",
    ),
    ("bench", "identity"): (
        "bots.accounts:bench_identity_main",
        "the linked-identity lookup per turn, and order-number guesses per hour",
    ),
    ("bench", "load"): (
        "bots.loadtest.harness:main",
        "simulated customers through the real adapters, with faults; lost/duplicated, p99",
    ),
    ("bench", "web"): (
        "bots.web.bench:main",
        "desk page render times at 10,000 tickets; agent click -> customer delivery",
    ),
    ("bench", "nlu"): ("workers.nlu.cli:bench_nlu_main", "train and test the local NLU method"),
    ("bench", "recommender"): ("workers.recommender.cli:bench_recommender_main", "scoring latency"),
    ("store", "import"): ("bots.store:import_main", "import a shop's files into the store"),
    ("store", "schema"): ("bots.store:schema_main", "the JSON Schema of each import file"),
    ("store", "stats"): ("bots.store:stats_main", "row counts of the store database"),
    ("store", "migrate"): ("bots.store:migrate_main", "create or upgrade the store database"),
    ("store", "beauty"): (
        "bots.store:beauty_main",
        "write the Amazon Beauty store's import files (a real second store)",
    ),
    ("link", "issue"): ("bots.accounts:link_issue_main", "a link token for a signed-in customer"),
    ("link", "serve"): ("bots.accounts:link_serve_main", "issue link tokens over HTTP (API key)"),
    ("privacy", "export"): ("bots.accounts:privacy_export_main", "write what is held about a user"),
    ("privacy", "delete"): ("bots.accounts:privacy_delete_main", "delete what a user left with us"),
    ("privacy", "purge"): ("bots.accounts:privacy_purge_main", "apply the retention settings once"),
    ("doctor",): ("bots.doctor:main", "check the configuration and the services it names"),
    ("health",): ("bots.doctor:health_main", "ask this host's process for /healthz (exit 0 = ok)"),
    ("env-example",): ("bots.envfile:main", "print, --write or --check .env.example"),
    ("flower",): ("workers.dashboard:main", "Celery Flower: watch the scoring queue and workers"),
}


def usage(group: str | None = None) -> str:
    """The command list; with `group` (e.g. "bench"), only the commands under that word."""
    chosen = {words: item for words, item in COMMANDS.items() if group in (None, words[0])}
    width = max(len(" ".join(words)) for words in chosen)
    lines = [
        "usage: concierge COMMAND [options]   (COMMAND --help for its options)",
        "       concierge --version",
        "",
    ]
    for words, (_, summary) in sorted(chosen.items()):
        lines.append(f"  {' '.join(words):<{width}}  {summary}")
    return "\n".join(lines)


def version_line() -> str | None:
    """`concierge <version>` of the installed distribution; None when it is not installed
    (run from a source folder without `pip install`), which has no version to report."""
    try:
        return f"concierge {version('concierge')}"
    except PackageNotFoundError:
        return None


def resolve(argv: Sequence[str]) -> tuple[Callable[[Sequence[str]], int], list[str]] | None:
    """The function for the longest command prefix of argv, and the arguments left for it."""
    for length in (2, 1):
        words = tuple(argv[:length])
        if words in COMMANDS:
            module_name, _, function = COMMANDS[words][0].partition(":")
            module = importlib.import_module(module_name)
            return getattr(module, function), list(argv[length:])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        line = version_line()
        if line is None:
            print("concierge: version unknown: the package is not installed "
                  "(install it with `pip install -e .` in the project folder)", file=sys.stderr)
            return 1
        print(line)
        return 0
    found = resolve(args)
    groups = {words[0] for words in COMMANDS if len(words) > 1}
    if found is None and args[0] in groups and args[1:2] in ([], ["-h"], ["--help"]):
        asked = bool(args[1:])  # `concierge bench --help`, or `concierge bench` alone
        print(usage(args[0]), file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    if found is None:
        print(f"concierge: unknown command {' '.join(args[:2])!r}\n\n{usage()}", file=sys.stderr)
        return 2
    function, rest = found
    try:
        return int(function(rest) or 0)
    except StoreNotReady as error:  # the message says what to run
        print(f"concierge: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
