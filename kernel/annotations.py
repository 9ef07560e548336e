"""Annotations that carry a model's shape on its LeaderWorkerSet, for the policy pack to read back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kernel.catalog import Dtype
from kernel.sizing import Attention, ModelShape

PREFIX = "inference.lws.dev/"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
GPU_RESOURCE = "nvidia.com/gpu"
SHM_VOLUME = "dshm"
MODEL_VOLUME = "model"


@dataclass(frozen=True)
class ModelFacts:
    shape: ModelShape
    max_model_len: int
    kv_sequences: int


def model_annotations(facts: ModelFacts) -> dict[str, str]:
    shape = facts.shape
    values: dict[str, object] = {
        "parameters": int(shape.parameters),
        "dtype": shape.dtype.value,
        "layers": shape.layers,
        "attention-heads": shape.attention_heads,
        "kv-heads": shape.kv_heads,
        "head-dim": shape.head_dim,
        "hidden-size": shape.hidden_size,
        "vocab-size": shape.vocab_size,
        "tied-embeddings": str(shape.tied_embeddings).lower(),
        "max-model-len": facts.max_model_len,
        "kv-cache-sequences": facts.kv_sequences,
    }
    if shape.is_moe:
        values |= {
            "active-parameters": int(shape.active),
            "expert-parameters": int(shape.expert_parameters),
            "routed-experts": shape.routed_experts,
            "shared-experts": shape.shared_experts,
            "experts-per-token": shape.experts_per_token,
        }
    if shape.expert_dtype is not None:
        values["expert-dtype"] = shape.expert_dtype.value
    if shape.unquantized_parameters:
        values["unquantized-parameters"] = int(shape.unquantized_parameters)
    if shape.attention is Attention.MLA:
        values |= {"attention": shape.attention.value, "kv-lora-rank": shape.kv_lora_rank,
                   "qk-rope-head-dim": shape.qk_rope_head_dim}  # fmt: skip
    if shape.sliding_window:
        values |= {"sliding-window": shape.sliding_window, "sliding-window-layers": shape.sliding_window_layers}
    return {PREFIX + key: str(value) for key, value in values.items() if value is not None}


def read_model_annotations(annotations: Mapping[str, object]) -> ModelFacts | None:
    """The facts our components wrote; None when any required one is missing or malformed."""

    def get(key: str) -> str | None:
        value = annotations.get(PREFIX + key)
        return str(value) if value is not None else None

    def integer(key: str) -> int | None:
        raw = get(key)
        return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None

    required = {k: integer(k) for k in ("parameters", "layers", "attention-heads", "kv-heads", "head-dim")}
    dtype = get("dtype")
    if any(v is None for v in required.values()) or dtype not in {d.value for d in Dtype}:
        return None
    attention = get("attention")
    expert_dtype = get("expert-dtype")
    shape = ModelShape(
        parameters=float(required["parameters"] or 0),
        dtype=Dtype(dtype),
        layers=required["layers"] or 0,
        attention_heads=required["attention-heads"] or 0,
        kv_heads=required["kv-heads"] or 0,
        head_dim=required["head-dim"] or 0,
        hidden_size=integer("hidden-size"),
        vocab_size=integer("vocab-size"),
        tied_embeddings=get("tied-embeddings") == "true",
        # Mixture-of-experts and attention facts: absent (or malformed) ones keep the dense GQA defaults.
        active_parameters=float(active) if (active := integer("active-parameters")) else None,
        expert_parameters=float(integer("expert-parameters") or 0),
        routed_experts=integer("routed-experts") or 0,
        shared_experts=integer("shared-experts") or 0,
        experts_per_token=integer("experts-per-token") or 0,
        expert_dtype=Dtype(expert_dtype) if expert_dtype in {d.value for d in Dtype} else None,
        unquantized_parameters=float(integer("unquantized-parameters") or 0),
        attention=Attention.MLA if attention == Attention.MLA.value else Attention.GQA,
        kv_lora_rank=integer("kv-lora-rank") or 0,
        qk_rope_head_dim=integer("qk-rope-head-dim") or 0,
        sliding_window=integer("sliding-window"),
        sliding_window_layers=integer("sliding-window-layers") or 0,
    )
    if shape.expert_parameters >= shape.parameters or (shape.attention is Attention.MLA and not shape.kv_lora_rank):
        shape = replace(shape, expert_parameters=0.0, attention=Attention.GQA)
    return ModelFacts(shape, integer("max-model-len") or 0, integer("kv-cache-sequences") or 1)
