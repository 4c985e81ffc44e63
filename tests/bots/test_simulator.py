"""The customer simulator: its phrases are its own, its customers react as their need says,
and a run through the real conversation reports its figures."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bots.simulator import (
    PHRASES,
    Need,
    Profile,
    Shopper,
    draw_need,
    main,
)
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import load_shop
from core.turn.taxonomy import load_taxonomy
from workers.nlu.augment import normalised, similarity


def rendered_phrases() -> list[str]:
    values = {"attr": "waterproof", "kind": "rain jacket", "budget": "$120"}
    return [template.format(**values) for group in PHRASES.values() for template in group]


def test_the_phrase_bank_is_not_the_understanding_models_training_data() -> None:
    taxonomy = load_taxonomy()
    trained = [text for text, _ in taxonomy.intent_examples()]
    trained += [text for text, _ in taxonomy.sentiment_examples]
    trained_keys = {normalised(text) for text in trained}
    for phrase in rendered_phrases():
        assert normalised(phrase) not in trained_keys, phrase
        closest = max(similarity(phrase, text) for text in trained)
        assert closest < 0.8, phrase


def test_a_customer_buys_what_meets_their_need_and_asks_for_less_when_it_costs_too_much() -> None:
    shop = load_shop(DEFAULT_DEMO_DIR)
    profile = Profile("C0002", ("headphones-audio",), ("wireless",), 0.5)
    need = draw_need(profile, shop.catalog, random.Random(3))
    assert need is not None and need.category == "headphones-audio"
    fitting = next(p for p in shop.catalog.all() if need.met_by(p))
    other = next(p for p in shop.catalog.all() if p.category != need.category)
    customer = Shopper(profile, need, random.Random(0), patience=3)
    assert customer.react([(1, other), (2, fitting)], 0) == ("buy", f"details:{fitting.id}:2")
    pricey = Need(need.category, need.attribute, fitting.price - 1, need.kind)
    customer = Shopper(profile, pricey, random.Random(0), patience=3)
    assert customer.react([(1, fitting)], 0)[0] == "cheaper"
    kind, _ = customer.react([(1, other)], 5)  # out of patience
    assert kind in ("give_up", "person")


@pytest.mark.slow
def test_a_run_through_the_real_conversation_reports_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--sessions", "12", "--seed", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["simulate"]
    assert figures["sessions"] == 12 and figures["turns"] >= 12
    assert 0.0 < figures["success_rate"] <= 1.0
    low, high = figures["success_ci95"]
    assert low <= figures["success_rate"] <= high
    assert set(figures["click_through"]) == {"1", "2", "3"}


@pytest.mark.slow
def test_the_bandit_learns_from_simulated_sessions_and_its_logs_judge_a_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workers.recommender.cli import eval_policy_main

    state, logs = tmp_path / "bandit.json", tmp_path / "slates.jsonl"
    assert main(["--sessions", "15", "--seed", "2", "--bandit", "learn", "--exploration", "0.3",
                 "--save-bandit", str(state), "--slates-out", str(logs)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["simulate"]
    # Most sessions close a slate (a purchase, a press, a message after it); the last slate
    # of a session that ran out of turns stays open.
    assert figures["slates"] >= 8 and 0.0 <= figures["purchases_per_slate"] <= 1.0
    saved = json.loads(state.read_text())
    assert saved["version"] == figures["slates"]  # every closed slate taught it once
    assert len(logs.read_text().splitlines()) == figures["slates"]
    assert eval_policy_main(["--logs", str(logs), "--candidate", str(state),
                             "--resamples", "50"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["eval_policy"]
    assert found["slates"] == figures["slates"] and found["version"] == saved["version"]
    logged = found["purchases"]["logged"][0]
    assert logged == pytest.approx(figures["purchases_per_slate"], abs=1e-3)
    for name in ("ips", "snips", "dr"):
        value, low, high = found["purchases"][name]
        assert low <= value <= high


def test_eval_policy_says_what_is_wrong_with_its_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workers.recommender.cli import eval_policy_main

    broken = tmp_path / "slates.jsonl"
    broken.write_text('{"id": "a"}\n')
    assert eval_policy_main(["--logs", str(broken), "--candidate", "model"]) == 2
    assert f"{broken}:1 is not a logged slate" in capsys.readouterr().err
    assert eval_policy_main(["--logs", str(tmp_path / "none.jsonl"), "--candidate",
                             "model"]) == 2
    assert "No such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        eval_policy_main(["--logs", str(broken), "--exploration", "3"])


@pytest.mark.slow
def test_the_learning_comparison_judges_each_bandit_from_the_logging_policys_slates_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--sessions", "8", "--seed", "3", "--learning", "4,8"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["simulate_learning"]
    rows = found["policies"]
    assert list(rows) == ["popularity", "model", "model+exploration (logging)",
                          "bandit after 4", "bandit after 8"]
    logging = rows["model+exploration (logging)"]
    for name in ("bandit after 4", "bandit after 8"):
        estimates = rows[name]["off_policy"]["purchases"]
        # The estimates read the logging policy's slates, not those shown while learning.
        assert estimates["logged"][0] == pytest.approx(logging["purchases_per_slate"], abs=1e-3)
        low, high = rows[name]["success_gain_vs_model"][1:]
        assert low <= rows[name]["success_gain_vs_model"][0] <= high
