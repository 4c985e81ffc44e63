"""LoRA fine-tuning of the understanding encoder, and the message vector shared with the
recommender (one encode per turn)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.state.store import ConversationState
from core.turn.recommendation import RecommendationRequest
from core.turn.taxonomy import load_taxonomy
from tests.workers.conftest import TinyStore
from workers import minilm
from workers.encoder import encode, pack_vector, unpack_vector
from workers.nlu.cli import bench_nlu_main
from workers.nlu.lora import TARGETS, LoraConfig, adapter_of, tune_encoder
from workers.nlu.model import NluConfig, NluModel
from workers.nlu.training import train_model
from workers.nlu.understander import LocalUnderstander

STATE = ConversationState(conversation_id="t")


def _small_task(per_intent: int = 6, intents: int = 5) -> list[tuple[str, str]]:
    specs = load_taxonomy().intents[:intents]
    return [(text, spec.name) for spec in specs for text in spec.examples[:per_intent]]


def test_merged_adapter_computes_what_peft_computes() -> None:
    """The (A, B) pairs taken out of a peft model and merged into the weights give the same
    hidden states as peft's own forward with its adapters beside the layers."""
    from peft import LoraConfig as PeftConfig
    from peft import inject_adapter_in_model

    torch.manual_seed(0)
    model = inject_adapter_in_model(
        PeftConfig(r=4, lora_alpha=8, target_modules=list(TARGETS)), minilm.pretrained())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: the adapters would change nothing
                parameter.normal_(std=0.02)
    model.eval()
    adapter = adapter_of(model, LoraConfig(rank=4, alpha=8))
    assert len(adapter.a) == 6 * len(TARGETS)
    tokenizer, pretrained = minilm.load_encoder(precise=True)
    _, merged = minilm.load_encoder(precise=True, adapter=adapter)
    assert merged is not pretrained
    assert minilm.load_encoder(precise=True, adapter=adapter)[1] is merged  # built once
    ids, mask = minilm.token_ids(tokenizer, ["where is my parcel?", "a red wool scarf please"])
    with torch.no_grad():
        expected = model(ids, mask)[-1]
        assert not torch.allclose(expected, pretrained(ids, mask)[-1], atol=1e-3)
        assert torch.allclose(merged(ids, mask)[-1], expected, atol=1e-4)


def test_lora_model_learns_its_labels_saves_and_reloads(tmp_path: Path) -> None:
    intents = _small_task()
    model = train_model(intents, (), NluConfig(method="lora", lora_epochs=2, calibrate=False))
    assert model.adapter is not None and model.meta["tune_s"] > 0
    texts = [text for text, _ in intents]
    tuned, plain = model.embed(texts), train_model(intents, (), NluConfig(calibrate=False)).embed(
        texts)
    assert tuned.shape == plain.shape and not (abs(tuned - plain) < 1e-3).all()
    hits = [p.label == label for (p, _), (_, label) in zip(model.predict(texts), intents,
                                                            strict=True)]
    assert sum(hits) / len(hits) >= 0.95
    model.save(tmp_path)
    again = NluModel.load(tmp_path)
    assert again.config.method == "lora" and again.adapter is not None
    assert again.adapter.digest == model.adapter.digest
    assert [p.label for p, _ in again.predict(texts)] == [p.label for p, _ in model.predict(texts)]
    # A LoRA encoder's vector is not the pretrained one the recommender reads: not shared.
    assert LocalUnderstander(again).understand(texts[0], STATE).sentence_vector is None


def test_lora_model_without_its_adapter_is_refused(tmp_path: Path) -> None:
    model = train_model(_small_task(3, 3), (), NluConfig(method="lora", lora_epochs=1,
                                                         calibrate=False))
    model.save(tmp_path)
    summary = json.loads((tmp_path / "nlu.json").read_text())
    summary["adapter_scale"] = None
    (tmp_path / "nlu.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="holds no adapter"):
        NluModel.load(tmp_path)


def test_unknown_method_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        NluConfig(method="full")
    with pytest.raises(SystemExit):
        bench_nlu_main(["--dataset", "bitext", "--method", "frozen,full"])
    assert "full" in capsys.readouterr().err


def test_train_command_refuses_a_misspelt_or_second_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workers.nlu.cli import train_nlu_main

    for method in ("lroa", "frozen,lora"):
        with pytest.raises(SystemExit):
            train_nlu_main(["--out", str(tmp_path), "--method", method])
    err = capsys.readouterr().err
    assert "lroa" in err and "one method trains a model" in err
    assert not (tmp_path / "nlu.npz").exists()


def test_tuning_two_tasks_at_once_keeps_each_task_apart() -> None:
    intents = _small_task(4, 3)
    moods = [("I love it, thank you", "positive"), ("this is awful and late", "negative"),
             ("great service", "positive"), ("worst shop ever", "negative")]
    adapter = tune_encoder([intents, moods], LoraConfig(epochs=1))
    assert set(adapter.a) == set(adapter.b) and adapter.scale == 2.0


def test_message_vector_is_the_recommenders_encode(nlu_model_dir: Path) -> None:
    """The understander's vector of a message is what the recommender would compute for the
    same text: sharing it changes nothing but the time."""
    local = LocalUnderstander.load(nlu_model_dir)
    text = "A warm waterproof jacket for hiking"
    packed = local.understand(text, STATE).sentence_vector
    assert packed is not None
    shared = unpack_vector(packed)
    assert shared is not None and shared.shape == (384,)
    own = encode([text.lower()])[0]
    assert float(shared @ own) > 0.999


@pytest.mark.parametrize("packed", ["not base64!", pack_vector([0.5] * 10),
                                    pack_vector([float("nan")] * 384), pack_vector([0.0] * 384)])
def test_a_bad_vector_is_never_used(packed: str) -> None:
    assert unpack_vector(packed) is None


def test_recommender_uses_the_turns_vector_instead_of_encoding(tiny_store: TinyStore) -> None:
    from core.shop.catalog import Product
    from workers.recommender import model as model_module
    from workers.recommender.service import ScoringService, load_histories

    calls: list[list[str]] = []

    def counting(texts: list[str]) -> torch.Tensor:
        calls.append(list(texts))
        return encode(texts)

    model, _ = model_module.load_checkpoint(tiny_store.model_dir)
    products = [Product(**p) for p in tiny_store.products]  # type: ignore[arg-type]
    histories = load_histories(tiny_store.folder / "interactions.csv")
    service = ScoringService(model, products, histories, counting,
                             item_encoder=lambda texts: encode(texts))
    text = "waterproof rain jacket"
    given = RecommendationRequest(user_id="C0003", text=text,
                                  text_vector=pack_vector(encode([text])[0]))
    assert [s.item_id for s in service.recommend(given)] == [
        s.item_id for s in service.recommend(RecommendationRequest(user_id="C0003", text=text))]
    assert calls == [[text]] and service.request_encodes == 1  # only the request without one
    service.forget_requests()
    broken = given.model_copy(update={"text_vector": "AAAA"})
    assert service.recommend(broken) and calls[-1] == [text]  # a bad vector costs an encode
    assert service.request_encodes == 2


def test_bench_trains_both_methods_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"train": _small_task(6, 6), "test": []}
    for spec in load_taxonomy().intents[:6]:
        rows["test"] += [(text, spec.name) for text in spec.examples[6:9]]
    for name, pairs in rows.items():
        (tmp_path / f"{name}.jsonl").write_text(
            "\n".join(json.dumps({"text": t, "label": y}) for t, y in pairs))
    assert bench_nlu_main(["--train", str(tmp_path / "train.jsonl"), "--test",
                           str(tmp_path / "test.jsonl"), "--method", "frozen,lora",
                           "--lora-epochs", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert list(figures["methods"]) == ["frozen", "lora"]
    lora = figures["methods"]["lora"]
    assert lora["tune_s"] > 0 and lora["lora_epochs"] == 1 and lora["lora_rank"] == 8
    assert figures["methods"]["frozen"]["tune_s"] == 0
    assert figures["best"] in {"frozen", "lora"} and any(line.startswith("better: ")
                                                          for line in out)


def test_heldout_bench_compares_methods_on_both_tasks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_nlu_main(["--heldout", "--method", "frozen,lora", "--lora-epochs", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    runs = figures["methods"]
    assert [runs[m]["method"] for m in ("frozen", "lora")] == ["frozen", "lora"]
    both = {m: f["intent_accuracy"] + f["sentiment_accuracy"] for m, f in runs.items()}
    assert figures["best"] == max(both, key=both.__getitem__)
    assert all(f["messages"] == 125 and f["train_s"] > 0 for f in runs.values())


def test_a_trained_model_is_not_retrained_for_a_method(
    nlu_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench_nlu_main(["--heldout", "--model", str(nlu_model_dir), "--method", "lora"])
    assert "--method is for training" in capsys.readouterr().err
