"""The terminal adapter driven through stdin, as a script would: a real process, real models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bots.terminal import TerminalOutbox, bench_chat, reply_text, to_incoming
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import load_shop
from core.turn.messages import Button, Incoming, Reply
from tests.processes import clean_env


def chat(lines: list[str], tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bots.terminal", *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(sqlite_path=tmp_path / "state.sqlite3"),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def replies_of(output: str) -> list[str]:
    return [block.strip() for block in output.split("concierge> ")[1:]]


def test_render_numbers_buttons() -> None:
    reply = Reply("Pick one", (Button("More like 1", "more:P1:1"), Button("Details 1", "d")))
    assert reply_text(reply) == "concierge> Pick one\n    [1] More like 1   [2] Details 1"


def test_numbers_press_buttons_of_the_last_reply() -> None:
    outbox = TerminalOutbox(open(os.devnull, "w"))  # noqa: SIM115
    assert "no buttons" in str(to_incoming("2", outbox, "c", "u", 0))
    outbox.send(Reply("x", (Button("a", "more:P1:1"), Button("b", "skip:P1:1"))))
    pressed = to_incoming("2", outbox, "c", "u", 1)
    assert isinstance(pressed, Incoming) and pressed.button == "skip:P1:1"
    assert "no button 7" in str(to_incoming("7", outbox, "c", "u", 2))
    typed = to_incoming("1999 was a good year", outbox, "c", "u", 3)
    assert isinstance(typed, Incoming) and typed.button is None


@pytest.mark.slow
def test_scripted_chat_end_to_end(tmp_path: Path) -> None:
    store = load_shop(DEFAULT_DEMO_DIR)
    order = next(o for o in store.orders.for_customer("C0009") if o.status == "in_transit")
    output = chat(
        [
            "hi",
            "I need a waterproof jacket",
            "something cheaper",
            "42",
            "3",
            "",
            f"where is my order {order.id}?",
            "what is your return policy?",
            "\x00\x1b" + "blah " * 30_000,
        ],
        tmp_path,
        "--user",
        "C0009",
    )
    hello, jackets, cheaper, no_button, details, empty, order_reply, policy, huge = replies_of(
        output
    )
    assert hello.startswith("Hi!")
    assert "[1] More like 1" in jackets
    jacket_prices = [
        float(line.split("$")[-1].replace(",", ""))
        for line in jackets.splitlines()
        if line[:2] in ("1.", "2.", "3.")
    ]
    cheaper_prices = [
        float(line.split("$")[-1].replace(",", ""))
        for line in cheaper.splitlines()
        if line[:2] in ("1.", "2.", "3.")
    ]
    assert jacket_prices and cheaper_prices
    assert max(cheaper_prices) < sorted(jacket_prices)[1]  # below most of what was shown
    assert "Rated" in details
    assert empty.startswith("I didn't get any text")
    assert "There is no button 42; choose 1-" in no_button
    assert f"#{order.id}" in order_reply and "on its way" in order_reply
    assert "return" in policy.lower() and "From our help article" in policy
    assert huge.startswith("(Your message was very long")


def test_bench_chat_times_turns_after_an_untimed_warm_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The models load lazily in the first turns: the warm-up pass takes them, not the figures."""
    assert bench_chat(["--turns", "20"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["turns"] == 20  # every scripted line is a turn (the "1" presses a button)
    assert figures["warmup_s"] > 0
    assert figures["ready_s"] == pytest.approx(figures["startup_s"] + figures["warmup_s"], abs=0.02)
    # Nearest rank: p99 of 20 turns is the 20th smallest, the maximum; the median is below it.
    assert figures["median_ms"] <= figures["p99_ms"] == figures["max_ms"]


def test_bench_chat_compares_encoders_and_sharing_the_message_vector(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each variant chats the script once; with the message's vector shared, the recommender
    encodes fewer request texts itself (the new request's is handed over)."""
    assert bench_chat(["--compare", "--turns", "7"]) == 0
    variants = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["variants"]
    assert list(variants) == ["float", "float+shared", "int8", "int8+shared"]
    assert all(v["turns"] > 0 and v["median_ms"] <= v["p99_ms"] for v in variants.values())
    for precision in ("float", "int8"):
        own, shared = variants[precision], variants[f"{precision}+shared"]
        assert shared["request_encodes"] < own["request_encodes"], variants


def test_bench_chat_concurrency_runs_batching_on_and_off_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """K threads per run, both modes at each K; with batching on the local model's forwards
    were shared (the wiring built a batcher), with it off there is none to report."""
    assert bench_chat(["--concurrency", "1,4", "--seconds", "0.5", "--state", "sqlite"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    runs = figures["runs"]
    assert figures["rate_limited"] == 0  # each thread sends at full speed: the limit is off
    assert [(r["threads"], r["batching"]) for r in runs] == [
        (1, "on"), (1, "off"), (4, "on"), (4, "off")
    ]
    assert all(r["turns"] > 0 and r["p50_ms"] <= r["p99_ms"] for r in runs)
    assert all(r["mean_batch"] is None for r in runs if r["batching"] == "off")
    assert all(r["mean_batch"] >= 1 for r in runs if r["batching"] == "on")


def test_bench_chat_refuses_an_unknown_batching_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        bench_chat(["--concurrency", "2", "--batching", "sometimes"])
    assert "--batching takes on, off or on,off, not 'sometimes'" in capsys.readouterr().err
