from __future__ import annotations

from pathlib import Path

import pytest

from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.jsonl import StoreDataError
from core.shop.knowledge import Article, Bm25KnowledgeBase, stem, tokenize


@pytest.fixture(scope="module")
def knowledge() -> Bm25KnowledgeBase:
    return Bm25KnowledgeBase.load(DEFAULT_DEMO_DIR / "faq.jsonl")


def test_knowledge_base_covers_every_topic(knowledge: Bm25KnowledgeBase) -> None:
    articles = knowledge.articles()
    assert len(articles) >= 24
    topics = {article.topic for article in articles}
    assert topics == {
        "shipping",
        "returns",
        "refunds",
        "payment",
        "account",
        "warranty",
        "privacy",
        "contact",
    }
    for article in articles:
        sentences = [part for part in article.body.split(". ") if part.strip()]
        assert 2 <= len(sentences) <= 5, article.id


@pytest.mark.parametrize(
    ("question", "topic", "article_id"),
    [
        ("what is your return policy?", "returns", "returns-policy"),
        ("how long does shipping take", "shipping", "shipping-times"),
        ("I was charged twice", "payment", "payment-charged-twice"),
        ("How do I reset my password?", "account", "account-password-reset"),
        ("my package never arrived", "shipping", "shipping-late-lost"),
        ("do you ship to Canada?", "shipping", "shipping-international"),
        ("can I swap these boots for a different size", "returns", "returns-exchanges"),
        ("when will I get my refund", "refunds", "refunds-timing"),
        ("I want to speak to a real person", "contact", "contact-human-agent"),
        ("what does the warranty cover", "warranty", None),
    ],
)
def test_answers_pick_the_right_article(
    knowledge: Bm25KnowledgeBase, question: str, topic: str, article_id: str | None
) -> None:
    answer = knowledge.answer(question)
    assert answer is not None
    assert answer.article.topic == topic
    if article_id is not None:
        assert answer.article.id == article_id
    assert answer.text == answer.article.body
    assert answer.score > 0


@pytest.mark.parametrize(
    "question",
    ["tell me a joke about the weather", "what's the weather like", "", "   ", "hello!", "qwzx"],
)
def test_off_topic_questions_get_none(knowledge: Bm25KnowledgeBase, question: str) -> None:
    assert knowledge.answer(question) is None


def test_topic_boost_decides_between_close_articles(knowledge: Bm25KnowledgeBase) -> None:
    question = "refund for a returned item"
    as_refund = knowledge.answer(question, topic="refunds")
    as_return = knowledge.answer(question, topic="returns")
    assert as_refund is not None and as_refund.article.topic == "refunds"
    assert as_return is not None and as_return.article.topic == "returns"
    plain = knowledge.answer(question)
    assert plain is not None and as_refund.score >= plain.score


def test_stemming_joins_word_forms() -> None:
    assert stem("shipping") == stem("shipped") == stem("ships") == stem("ship")
    assert stem("charged") == stem("charge") == stem("charges")
    assert stem("returns") == stem("returned") == "return"
    assert stem("policies") == "policy"
    assert tokenize("What is your return policy?") == ["return", "policy"]


def test_small_knowledge_base_threshold() -> None:
    articles = [
        Article(id="a", topic="shipping", title="Shipping", body="We ship fast. Always."),
        Article(id="b", topic="payment", title="Cards", body="We take cards. Visa works."),
        Article(id="c", topic="returns", title="Returns", body="Send it back. It is free."),
        Article(id="d", topic="account", title="Password", body="Reset it. Use the link."),
        Article(id="e", topic="contact", title="Hours", body="We open at 8. We close at 8."),
    ]
    knowledge = Bm25KnowledgeBase(articles)
    answer = knowledge.answer("do you take cards")
    assert answer is not None and answer.article.id == "b"
    assert knowledge.answer("unicorn recipes") is None


def test_bad_faq_file(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text('{"id": "x", "topic": "", "title": "t", "body": "b"}\n')
    with pytest.raises(StoreDataError, match=r"faq.jsonl:1: invalid Article.*topic"):
        Bm25KnowledgeBase.load(path)
    path.write_text("")
    with pytest.raises(StoreDataError, match="no articles"):
        Bm25KnowledgeBase.load(path)
