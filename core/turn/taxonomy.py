"""The understanding taxonomy: intents (name, description, examples) and sentiment examples.

One data file (`data/nlu/intents.yaml`, shipped as `core.data`, by default) feeds both
backends: the local model trains on its examples and the LLM prompt renders its names,
descriptions and a few examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.infra.settings import packaged_data
from core.turn.understanding import Intent, Sentiment

DEFAULT_PATH = packaged_data("nlu", "intents.yaml")
MIN_EXAMPLES = 20


class TaxonomyError(ValueError):
    """The taxonomy file is missing, malformed or too thin to train on."""


@dataclass(frozen=True)
class IntentSpec:
    name: str
    description: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    intents: tuple[IntentSpec, ...]
    sentiment_examples: tuple[tuple[str, str], ...]  # (text, sentiment label)
    version: int = 1

    @property
    def intent_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.intents)

    def intent_examples(self) -> list[tuple[str, str]]:
        """(text, intent name) for every example, in file order."""
        return [(text, spec.name) for spec in self.intents for text in spec.examples]

    def spec(self, name: str) -> IntentSpec:
        for spec in self.intents:
            if spec.name == name:
                return spec
        raise KeyError(name)


def load_taxonomy(path: Path = DEFAULT_PATH) -> Taxonomy:
    """Read and check the taxonomy file; raises `TaxonomyError` saying what is wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"cannot read taxonomy {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("intents"), list):
        raise TaxonomyError(f"{path}: expected a mapping with an 'intents' list")
    intents: list[IntentSpec] = []
    for entry in raw["intents"]:
        name = str(entry.get("name", "")).strip()
        examples = tuple(str(e).strip() for e in entry.get("examples") or () if str(e).strip())
        if not name:
            raise TaxonomyError(f"{path}: an intent has no name")
        if len(examples) < MIN_EXAMPLES:
            raise TaxonomyError(
                f"{path}: intent {name!r} has {len(examples)} examples, needs {MIN_EXAMPLES}"
            )
        intents.append(IntentSpec(name, " ".join(str(entry.get("description", "")).split()),
                                  examples))
    names = [spec.name for spec in intents]
    if len(set(names)) != len(names):
        raise TaxonomyError(f"{path}: duplicate intent names")
    if Intent.OTHER.value not in names:
        raise TaxonomyError(f"{path}: the 'other' intent is required (out of scope, injections)")
    sentiment: list[tuple[str, str]] = []
    for label, texts in (raw.get("sentiment") or {}).items():
        if label not in {s.value for s in Sentiment}:
            raise TaxonomyError(f"{path}: unknown sentiment {label!r}")
        sentiment.extend((str(t).strip(), label) for t in texts or () if str(t).strip())
    return Taxonomy(tuple(intents), tuple(sentiment), int(raw.get("version", 1)))


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    intent: str
    sentiment: str


def load_labelled(path: Path) -> list[LabelledMessage]:
    """A JSON-lines file of {"text", "intent", "sentiment"}: the held-out evaluation set."""
    rows: list[LabelledMessage] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            rows.append(LabelledMessage(item["text"], item["intent"], item["sentiment"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TaxonomyError(f"{path}:{number}: {exc}") from exc
    return rows
