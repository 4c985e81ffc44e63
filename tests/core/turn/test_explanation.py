"""Explanations state evidence only; an LLM's phrasing survives only if every claim is backed."""

from __future__ import annotations

from core.llm.client import LlmClient, LlmConfig
from core.llm.phraser import LlmPhraser
from core.turn.explanation import FactVocabulary, explain, stated_numbers, unsupported
from core.turn.recommendation import Evidence, Suggestion
from core.turn.replies import template_explanation
from tests.conftest import StandIn


def _suggestion(**evidence: object) -> Suggestion:
    values: dict[str, object] = {"price": 66.99, "rating": 4.5, "review_count": 25}
    return Suggestion(
        item_id="P0001",
        title="Alpenglow Echo Rain Jacket",
        price=66.99,
        score=1.0,
        evidence=Evidence(**(values | evidence)),  # type: ignore[arg-type]
    )


VOCABULARY = FactVocabulary.of(
    tags=["waterproof", "packable", "vegan", "navy", "insulated"],
    titles=["Alpenglow Echo Rain Jacket", "Stormline Vista Rain Shell", "Cast Iron Skillet"],
)


class Fixed:
    def __init__(self, text: str) -> None:
        self.text = text

    def phrase(self, evidence: Evidence) -> str:
        return self.text


class Broken:
    def phrase(self, evidence: Evidence) -> str:
        raise TimeoutError("llm timed out")


def test_template_states_each_evidence_field() -> None:
    suggestion = _suggestion(
        matched_attributes=("waterproof", "navy"),
        similar_history=("Stormline Vista Rain Shell",),
        budget_max=80.0,
    )
    assert template_explanation(suggestion) == (
        "Waterproof and navy; like your Stormline Vista Rain Shell; under $80; "
        "rated 4.5/5 by 25 reviewers."
    )


def test_template_never_claims_what_is_not_there() -> None:
    over_budget = _suggestion(budget_max=50.0, review_count=0)
    text = template_explanation(over_budget)
    assert "budget" not in text and "rated" not in text
    assert template_explanation(_suggestion(matched_terms=("jacket", "trails"))).startswith(
        "Matches jacket and trails"
    )
    assert "$99.99" in template_explanation(_suggestion(budget_max=99.99))


def test_faithful_phrasing_is_kept() -> None:
    suggestion = _suggestion(matched_attributes=("waterproof",), budget_max=80.0)
    text = "A waterproof pick at $66.99, well inside your $80 budget. Rated 4.5/5 by 25 reviewers."
    assert explain(suggestion, Fixed(text), VOCABULARY) == text


def test_phrasing_with_an_unbacked_number_attribute_or_title_falls_back() -> None:
    suggestion = _suggestion(matched_attributes=("waterproof",), budget_max=80.0)
    template = template_explanation(suggestion)
    for text in (
        "Waterproof and only $59.",  # wrong price
        "Waterproof, rated 4.9/5.",  # wrong rating
        "Waterproof and insulated for cold days.",  # attribute not in the evidence
        "Waterproof, like the Stormline Vista Rain Shell you bought.",  # title not cited
        "Waterproof. Loved by 3,000 hikers.",  # a second sentence with a made-up number
    ):
        assert unsupported(text, suggestion, VOCABULARY) is not None, text
        assert explain(suggestion, Fixed(text), VOCABULARY) == template


def test_failing_phraser_falls_back_to_the_template() -> None:
    suggestion = _suggestion(matched_attributes=("waterproof",))
    assert explain(suggestion, Broken(), VOCABULARY) == template_explanation(suggestion)


def test_own_title_and_cited_history_titles_are_allowed() -> None:
    suggestion = _suggestion(similar_history=("Stormline Vista Rain Shell",))
    text = "The Alpenglow Echo Rain Jacket is like your Stormline Vista Rain Shell."
    assert unsupported(text, suggestion, VOCABULARY) is None


def test_llm_phrasing_is_used_when_faithful_and_replaced_when_not(stand_in: StandIn) -> None:
    suggestion = Suggestion(
        item_id="P0001", title="Stormline Vista Rain Shell", price=79.0, score=1.0,
        evidence=Evidence(price=79.0, matched_attributes=("waterproof",), rating=4.6,
                          review_count=812, budget_max=80.0),
    )
    vocabulary = FactVocabulary.of(("waterproof", "insulated"), ("Stormline Vista Rain Shell",))
    stand_in.script = [
        'ok:{"sentence": "Waterproof, under your $80 limit, and rated 4.6/5 by 812 shoppers."}',
        'ok:{"sentence": "Waterproof and insulated, now only $59!"}',
    ]
    phraser = LlmPhraser(LlmClient(LlmConfig(base_url=stand_in.base_url, model="stand-in",
                                             retries=0)))
    faithful = explain(suggestion, phraser, vocabulary)
    assert faithful == "Waterproof, under your $80 limit, and rated 4.6/5 by 812 shoppers."
    assert explain(suggestion, phraser, vocabulary) == template_explanation(suggestion)
    prompt = stand_in.requests[0]["messages"][0]["content"]
    assert '"review_count":812' in prompt and "Stormline" not in prompt


def test_claims_the_evidence_lacks_fall_back_to_the_template() -> None:
    """The issue's examples, and their kin: deals, policies, addresses, numbers in words."""
    suggestion = _suggestion(matched_attributes=("waterproof",), budget_max=80.0)
    template = template_explanation(suggestion)
    for text, why in (
        ("Waterproof, with free lifetime returns.", "claim 'free'"),
        ("Waterproof and rated 4.5/5; see https://deals.example/jacket for more.", "address"),
        ("Waterproof, details at www.alpenglow.example.", "address"),
        ("Questions? Write to help@alpenglow.example about this waterproof jacket.", "address"),
        ("Waterproof and sold by alpenglow.com.", "address"),
        ("Waterproof and just forty dollars.", "number forty"),
        ("Waterproof, and reviewers give it five stars.", "number five"),
        ("Waterproof and rated 4.5/5 by twenty-six reviewers.", "number twenty six"),
        ("Waterproof and a hundred percent windproof.", "number hundred"),
        ("Waterproof, and on sale this week.", "claim 'sale'"),
        ("A waterproof jacket with free shipping.", "claim 'free'"),
        ("The best waterproof jacket under your $80 budget.", "claim 'best'"),
        ("Brand new this season and waterproof.", "claim 'new'"),
        ("Waterproof and backed by a warranty.", "claim 'warranty'"),
        ("Waterproof and paraben-free.", "claim 'free'"),
        ("The only waterproof jacket you will need.", "claim 'only'"),
    ):
        problem = unsupported(text, suggestion, VOCABULARY)
        assert problem is not None and problem.startswith(why.split()[0]), (text, problem)
        assert explain(suggestion, Fixed(text), VOCABULARY) == template, text


def test_honest_phrasings_still_pass() -> None:
    suggestion = _suggestion(
        matched_attributes=("waterproof", "fragrance-free"), matched_terms=("jacket",),
        similar_history=("Stormline Vista Rain Shell",), budget_max=80.0,
    )
    for text in (
        "A waterproof pick at $66.99, well inside your $80 budget. Rated 4.5/5 by 25 reviewers.",
        "Waterproof and under your $80 budget, rated 4.5 out of five by twenty-five reviewers.",
        "Like your Stormline Vista Rain Shell, this waterproof jacket is in stock at $66.99.",
        "A fragrance-free, waterproof jacket that 25 reviewers rate 4.5 out of 5.",
        "The Alpenglow Echo Rain Jacket keeps you dry: waterproof and under $80.",
    ):
        assert unsupported(text, suggestion, VOCABULARY) is None, text
        assert explain(suggestion, Fixed(text), VOCABULARY) == text


def test_claims_and_numbers_backed_by_cited_titles_are_allowed() -> None:
    suggestion = _suggestion().model_copy(update={"title": "Trailhead Free Spirit 3-Pack Socks"})
    vocabulary = FactVocabulary.of((), ("Trailhead Free Spirit 3-Pack Socks",))
    text = "The Trailhead Free Spirit 3-Pack Socks, rated 4.5/5."
    assert unsupported(text, suggestion, vocabulary) is None
    assert unsupported("Three pairs, free shipping.", suggestion, vocabulary) == (
        "claim 'shipping' is not in the evidence"
    )


def test_out_of_stock_is_never_called_in_stock() -> None:
    suggestion = _suggestion(matched_attributes=("waterproof",), in_stock=False)
    assert unsupported("Waterproof and in stock.", suggestion, VOCABULARY) is not None
    assert unsupported("Waterproof and rated 4.5/5.", suggestion, VOCABULARY) is None


def test_numbers_in_words_are_read() -> None:
    values = [value for _, value in stated_numbers(
        "forty dollars, twenty-five reviews, a hundred and ten, two dozen, 3,000, one of them"
    )]
    assert values == [3000.0, 40.0, 25.0, 110.0, 24.0]
