"""One-line explanations of a suggestion, built only from its evidence."""

from __future__ import annotations

from core.recommendation import Evidence, Suggestion


def explain(suggestion: Suggestion) -> str:
    """A short sentence stating facts from the evidence and nothing else."""
    evidence = suggestion.evidence
    parts: list[str] = []
    if evidence.matched_attributes:
        parts.append(_join(evidence.matched_attributes).capitalize())
    if evidence.similar_to:
        parts.append(f"similar to {evidence.similar_to}")
    elif evidence.similar_history:
        parts.append(f"like your {evidence.similar_history[0]}")
    if evidence.budget_max is not None and evidence.price <= evidence.budget_max:
        parts.append(f"within your ${evidence.budget_max:,.0f} budget")
    rating = _rating(evidence)
    if rating:
        parts.append(rating)
    if not parts and evidence.matched_terms:
        parts.append(f"matches {_join(evidence.matched_terms[:3])}")
    if not parts:
        return "A popular pick in our catalog."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _rating(evidence: Evidence) -> str:
    if evidence.rating is None or not evidence.review_count:
        return ""
    return f"rated {evidence.rating:.1f}/5 by {evidence.review_count:,} reviewers"


def _join(words: tuple[str, ...] | list[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
