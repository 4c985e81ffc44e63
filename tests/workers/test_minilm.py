"""The int8 MiniLM encoder: which layers are quantised, how close its sentence vectors stay."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from core.turn.taxonomy import DEFAULT_PATH, load_labelled
from workers import minilm
from workers.encoder import encode

LINEAR_LAYERS = ("qkv", "attention_out", "up", "down")


def _linear_kinds(model: nn.Module) -> set[type]:
    return {type(getattr(layer, name)) for layer in model.layers for name in LINEAR_LAYERS}


def test_int8_replaces_every_linear_layer_and_nothing_else() -> None:
    int8 = minilm.load_encoder(precision="int8")[1].module
    float32 = minilm.load_encoder(precise=True)[1].module
    assert _linear_kinds(int8) == {DynamicInt8Linear}
    assert _linear_kinds(float32) == {nn.Linear}
    assert not any(type(module) is nn.Linear for module in int8.modules())
    # Weights per output channel: one scale per row of each matrix, not one per matrix.
    weight = int8.layers[0].up.weight()
    assert weight.dtype == torch.qint8 and weight.q_per_channel_scales().numel() == 1536
    # Embeddings and LayerNorms stay float32.
    assert int8.words.weight.dtype == int8.layers[0].out_norm.weight.dtype == torch.float32


def test_one_int8_encoder_serves_understanding_and_request_texts() -> None:
    """`precise` (float32 rather than bfloat16) means nothing to int8: the understanding
    model and the recommender share the one quantised model of the process."""
    assert minilm.load_encoder(precise=True, precision="int8") is minilm.load_encoder(
        precision="int8")
    assert minilm.load_encoder(precision="int8") is not minilm.load_encoder(precise=True)


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_the_served_trace_computes_what_the_model_does(precision: minilm.Precision) -> None:
    """Every hidden state of the frozen trace equals the eager module's, for one message or a
    padded batch, short or cut at the token limit, at either precision."""
    tokenizer, encoder = minilm.load_encoder(precise=True, precision=precision)
    assert isinstance(encoder.traced, torch.jit.ScriptModule)
    texts = [row.text for row in load_labelled(DEFAULT_PATH.parent / "heldout.jsonl")][:24]
    batches = [texts[:1], texts[1:9], texts[9:24], ["word " * 300, "hi"]]
    with torch.inference_mode():
        for batch in batches:
            ids, mask = minilm.token_ids(tokenizer, batch)
            served, eager = encoder(ids, mask), encoder.module(ids, mask)
            assert len(served) == len(eager) == 7
            for got, want in zip(served, eager, strict=True):
                assert got.shape == want.shape and torch.equal(got, want)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="float or int8"):
        minilm.load_encoder(precision="int4")  # type: ignore[arg-type]


def test_int8_sentence_vectors_stay_close_to_float() -> None:
    texts = [row.text for row in load_labelled(DEFAULT_PATH.parent / "heldout.jsonl")][:60]
    exact = torch.cat([encode([text]) for text in texts])  # one message at a time, as turns
    int8 = torch.cat([encode([text], precision="int8") for text in texts])
    similarity = (exact * int8).sum(-1)  # both L2-normalised: (N,) cosines
    assert similarity.mean() > 0.95, similarity.mean()
    assert similarity.min() > 0.85, similarity.min()
    assert not torch.allclose(exact, int8, atol=1e-3)  # int8 really ran
