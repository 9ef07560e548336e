"""A checkpoint's config.json (Hugging Face transformers format) -> the facts of its model card.

Pure functions over the parsed JSON: the config layer reads the file (`models[i].model.configFile`), the
catalog (kernel/checkpoints.py) keeps the same fields for well-known checkpoints, and both go through
`read_config`. Unknown fields are ignored; a missing required one raises ConfigJsonError naming the key.

Parameter counts are computed from the architecture, the way the engines build the layers: attention (GQA
with q/k/v/o projections, or DeepSeek's MLA with its low-rank projections), dense SwiGLU MLPs, routed and
shared experts with their router, norms and the embedding tables. Multi-token-prediction layers
(num_nextn_predict_layers) are not counted: the engines load them only for speculative decoding, and the
published totals (671B for DeepSeek-V3, 355B for GLM-4.5) leave them out too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kernel.catalog import Dtype
from kernel.sizing import Attention, ModelShape


class ConfigJsonError(ValueError):
    """config.json cannot be read as a model card; the message names the JSON key."""


# config.json `architectures[0]` -> family. Kimi-K2 ships as DeepseekV3ForCausalLM.
ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "DeepseekV2ForCausalLM": "deepseek",
    "DeepseekV3ForCausalLM": "deepseek",
    "MixtralForCausalLM": "mixtral",
    "GptOssForCausalLM": "gpt_oss",
    "Glm4MoeForCausalLM": "glm4_moe",
    "Llama4ForConditionalGeneration": "llama4",
    "Llama4ForCausalLM": "llama4",
}

# torch_dtype of an unquantized checkpoint.
_TORCH_DTYPES = {"bfloat16": Dtype.BF16, "float16": Dtype.FP16, "float32": Dtype.BF16}


@dataclass(frozen=True)
class CardFacts:
    """What a config.json says about a model, in the units of the stack's model card."""

    architecture: str
    shape: ModelShape
    context_length: int

    def card_fields(self) -> dict[str, Any]:
        """The card's camelCase keys (as in Pulumi.<stack>.yaml) that these facts fill."""
        shape = self.shape
        fields: dict[str, Any] = {
            "parametersBillion": round(shape.parameters / 1e9, 3),
            "dtype": shape.dtype.value,
            "layers": shape.layers,
            "attentionHeads": shape.attention_heads,
            "kvHeads": shape.kv_heads,
            "headDim": shape.head_dim,
            "hiddenSize": shape.hidden_size,
            "vocabSize": shape.vocab_size,
            "tiedEmbeddings": shape.tied_embeddings,
            "contextLength": self.context_length,
            "attention": shape.attention.value,
        }
        if shape.is_moe:
            fields |= {
                "activeParametersBillion": round(shape.active / 1e9, 3),
                "expertParametersBillion": round(shape.expert_parameters / 1e9, 3),
                "routedExperts": shape.routed_experts,
                "sharedExperts": shape.shared_experts,
                "expertsPerToken": shape.experts_per_token,
            }
        if shape.expert_dtype is not None:
            fields["expertDtype"] = shape.expert_dtype.value
        if shape.unquantized_parameters:
            fields["unquantizedParametersBillion"] = round(shape.unquantized_parameters / 1e9, 4)
        if shape.attention is Attention.MLA:
            fields |= {"kvLoraRank": shape.kv_lora_rank, "qkRopeHeadDim": shape.qk_rope_head_dim}
        if shape.sliding_window:
            fields |= {"slidingWindow": shape.sliding_window, "slidingWindowLayers": shape.sliding_window_layers}
        return fields


class _Config:
    """Typed access to the JSON object, with errors that name the key."""

    def __init__(self, raw: Mapping[str, Any], prefix: str = "") -> None:
        self.raw = raw
        self.prefix = prefix

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise ConfigJsonError(f"{self.prefix}{key} is missing")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigJsonError(f"{self.prefix}{key} must be a non-negative integer, not {value!r}")
        return value

    def optional(self, key: str) -> int | None:
        return self.integer(key) if self.raw.get(key) is not None else None

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key, default)
        return value if isinstance(value, bool) else default


def read_config(raw: object) -> CardFacts:
    """The model card facts of a parsed config.json; ConfigJsonError names what is missing or unknown."""
    if not isinstance(raw, Mapping):
        raise ConfigJsonError("is not a JSON object")
    architectures = raw.get("architectures")
    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        raise ConfigJsonError("architectures is missing (a list naming the model class, e.g. LlamaForCausalLM)")
    architecture = architectures[0]
    family = ARCHITECTURES.get(architecture)
    if family is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ConfigJsonError(f"architecture {architecture} is not one the planner can size; known: {known}")
    config = _Config(raw)
    if family == "llama4":
        text = raw.get("text_config")
        config = _Config(text if isinstance(text, Mapping) else raw, "text_config." if "text_config" in raw else "")
    shape, context = _READERS[family](config)
    return CardFacts(architecture, _with_storage(shape, raw), context)


def _common(config: _Config) -> dict[str, Any]:
    hidden = config.integer("hidden_size")
    heads = config.integer("num_attention_heads")
    if heads == 0:
        raise ConfigJsonError(f"{config.prefix}num_attention_heads must be at least 1")
    return {
        "hidden": hidden,
        "heads": heads,
        "kv_heads": config.integer("num_key_value_heads", heads),
        "head_dim": config.optional("head_dim") or hidden // heads,
        "layers": config.integer("num_hidden_layers"),
        "vocab": config.integer("vocab_size"),
        "tied": config.flag("tie_word_embeddings"),
        "context": config.integer("max_position_embeddings"),
    }


def _gqa_attention(c: Mapping[str, Any], bias: bool) -> float:
    q, kv = c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    weights = c["hidden"] * (q + 2 * kv) + q * c["hidden"]
    return float(weights + ((q + 2 * kv) if bias else 0))


def _mlp(hidden: int, intermediate: int) -> float:
    return 3.0 * hidden * intermediate  # gate, up and down projections (SwiGLU)


def _embeddings(c: Mapping[str, Any]) -> float:
    return float(c["vocab"] * c["hidden"] * (1 if c["tied"] else 2))


def _norms(c: Mapping[str, Any], per_layer: int = 2) -> float:
    return float(c["hidden"] * (per_layer * c["layers"] + 1))


def _dense_shape(c: Mapping[str, Any], parameters: float) -> ModelShape:
    return ModelShape(
        parameters=parameters, dtype=Dtype.BF16, layers=c["layers"], attention_heads=c["heads"],
        kv_heads=c["kv_heads"], head_dim=c["head_dim"], hidden_size=c["hidden"], vocab_size=c["vocab"],
        tied_embeddings=c["tied"],
    )  # fmt: skip


def _read_llama(config: _Config, *, bias: bool = False, qk_norm: bool = False) -> tuple[ModelShape, int]:
    c = _common(config)
    per_layer = _gqa_attention(c, bias) + _mlp(c["hidden"], config.integer("intermediate_size"))
    if qk_norm:
        per_layer += 2 * c["head_dim"]
    total = c["layers"] * per_layer + _embeddings(c) + _norms(c)
    return _dense_shape(c, total), c["context"]


def _read_qwen2(config: _Config) -> tuple[ModelShape, int]:
    return _read_llama(config, bias=True)


def _read_qwen3(config: _Config) -> tuple[ModelShape, int]:
    return _read_llama(config, qk_norm=True)


@dataclass(frozen=True)
class _Moe:
    """The routed experts of a model: how many layers have them and how big each expert is."""

    moe_layers: int
    routed: int
    shared: int
    per_token: int
    expert_size: float
    shared_size: float
    router_size: float


def _moe_shape(c: Mapping[str, Any], dense: float, moe: _Moe) -> ModelShape:
    experts = moe.moe_layers * moe.routed * moe.expert_size
    shared = moe.moe_layers * (moe.shared * moe.shared_size + moe.router_size)
    total = dense + shared + experts
    active = total - experts + (experts * moe.per_token / moe.routed if moe.routed else 0)
    return replace(
        _dense_shape(c, total),
        active_parameters=active,
        expert_parameters=experts,
        routed_experts=moe.routed,
        shared_experts=moe.shared,
        experts_per_token=moe.per_token,
    )


def _read_qwen3_moe(config: _Config) -> tuple[ModelShape, int]:
    c = _common(config)
    dense = c["layers"] * (_gqa_attention(c, False) + 2 * c["head_dim"]) + _embeddings(c) + _norms(c)
    routed = config.integer("num_experts")
    moe = _Moe(
        moe_layers=c["layers"], routed=routed, shared=0, per_token=config.integer("num_experts_per_tok"),
        expert_size=_mlp(c["hidden"], config.integer("moe_intermediate_size")), shared_size=0.0,
        router_size=float(c["hidden"] * routed),
    )  # fmt: skip
    return _moe_shape(c, dense, moe), c["context"]


def _read_mixtral(config: _Config) -> tuple[ModelShape, int]:
    c = _common(config)
    dense = c["layers"] * _gqa_attention(c, False) + _embeddings(c) + _norms(c)
    routed = config.integer("num_local_experts")
    moe = _Moe(
        moe_layers=c["layers"], routed=routed, shared=0, per_token=config.integer("num_experts_per_tok"),
        expert_size=_mlp(c["hidden"], config.integer("intermediate_size")), shared_size=0.0,
        router_size=float(c["hidden"] * routed),
    )  # fmt: skip
    return _moe_shape(c, dense, moe), c["context"]


def _read_glm4_moe(config: _Config) -> tuple[ModelShape, int]:
    c = _common(config)
    first_dense = config.integer("first_k_dense_replace", 0)
    qk_norm = 2 * c["head_dim"] if config.flag("use_qk_norm") else 0
    attention = _gqa_attention(c, config.flag("attention_bias")) + qk_norm
    dense_mlps = first_dense * _mlp(c["hidden"], config.integer("intermediate_size"))
    dense = c["layers"] * attention + dense_mlps + _embeddings(c) + _norms(c)
    routed = config.integer("n_routed_experts")
    expert = _mlp(c["hidden"], config.integer("moe_intermediate_size"))
    moe = _Moe(
        moe_layers=c["layers"] - first_dense, routed=routed, shared=config.integer("n_shared_experts", 0),
        per_token=config.integer("num_experts_per_tok"), expert_size=expert, shared_size=expert,
        router_size=float(c["hidden"] * routed + routed),
    )  # fmt: skip
    return _moe_shape(c, dense, moe), c["context"]


def _read_deepseek(config: _Config) -> tuple[ModelShape, int]:
    c = _common(config)
    hidden, heads = c["hidden"], c["heads"]
    kv_rank, rope = config.integer("kv_lora_rank"), config.integer("qk_rope_head_dim")
    nope, value = config.integer("qk_nope_head_dim"), config.integer("v_head_dim")
    q_rank = config.optional("q_lora_rank")
    query = heads * (nope + rope)
    q_proj = hidden * q_rank + q_rank + q_rank * query if q_rank else hidden * query
    kv_proj = hidden * (kv_rank + rope) + kv_rank + kv_rank * heads * (nope + value)
    attention = q_proj + kv_proj + heads * value * hidden
    first_dense = config.integer("first_k_dense_replace", 0)
    dense_mlps = first_dense * _mlp(hidden, config.integer("intermediate_size"))
    dense = c["layers"] * attention + dense_mlps + _embeddings(c) + _norms(c)
    routed = config.integer("n_routed_experts")
    expert = _mlp(hidden, config.integer("moe_intermediate_size"))
    moe = _Moe(
        moe_layers=c["layers"] - first_dense, routed=routed, shared=config.integer("n_shared_experts", 0),
        per_token=config.integer("num_experts_per_tok"), expert_size=expert, shared_size=expert,
        router_size=float(hidden * routed + routed),
    )  # fmt: skip
    shape = _moe_shape(c, dense, moe)
    # MLA: num_key_value_heads in these configs equals the heads; the cache is the latent, not per head.
    mla = replace(
        shape, kv_heads=heads, head_dim=nope + rope, attention=Attention.MLA, kv_lora_rank=kv_rank,
        qk_rope_head_dim=rope,
    )  # fmt: skip
    return mla, c["context"]


def _read_gpt_oss(config: _Config) -> tuple[ModelShape, int]:
    c = _common(config)
    hidden, inter = c["hidden"], config.integer("intermediate_size")
    sinks = c["heads"]
    dense = c["layers"] * (_gqa_attention(c, True) + sinks) + _embeddings(c) + _norms(c)
    routed = config.integer("num_local_experts")
    per_token = config.integer("num_experts_per_tok", config.raw.get("experts_per_token"))
    # gate_up_proj (2 x intermediate, with bias) and down_proj (with bias) per expert
    expert = hidden * 2 * inter + 2 * inter + inter * hidden + hidden
    moe = _Moe(
        moe_layers=c["layers"], routed=routed, shared=0, per_token=per_token, expert_size=float(expert),
        shared_size=0.0, router_size=float(hidden * routed + routed),
    )  # fmt: skip
    shape = _moe_shape(c, dense, moe)
    layer_types = config.raw.get("layer_types")
    sliding = (
        sum(1 for kind in layer_types if kind == "sliding_attention")
        if isinstance(layer_types, list)
        else c["layers"] // 2
    )
    window = config.optional("sliding_window")
    if window:
        shape = replace(shape, sliding_window=window, sliding_window_layers=sliding)
    return shape, c["context"]


def _read_llama4(config: _Config) -> tuple[ModelShape, int]:
    c = _common(config)
    step = config.integer("interleave_moe_layer_step", 1) or 1
    moe_layers = c["layers"] // step
    dense_layers = c["layers"] - moe_layers
    expert = _mlp(c["hidden"], config.integer("intermediate_size"))
    dense_mlp = _mlp(c["hidden"], config.integer("intermediate_size_mlp")) if dense_layers else 0.0
    dense = c["layers"] * _gqa_attention(c, False) + dense_layers * dense_mlp + _embeddings(c) + _norms(c)
    routed = config.integer("num_local_experts")
    moe = _Moe(
        moe_layers=moe_layers, routed=routed, shared=1, per_token=config.integer("num_experts_per_tok"),
        expert_size=expert, shared_size=expert, router_size=float(c["hidden"] * routed),
    )  # fmt: skip
    return _moe_shape(c, dense, moe), c["context"]


_READERS = {
    "llama": _read_llama,
    "qwen2": _read_qwen2,
    "qwen3": _read_qwen3,
    "qwen3_moe": _read_qwen3_moe,
    "deepseek": _read_deepseek,
    "mixtral": _read_mixtral,
    "gpt_oss": _read_gpt_oss,
    "glm4_moe": _read_glm4_moe,
    "llama4": _read_llama4,
}


def _with_storage(shape: ModelShape, raw: Mapping[str, Any]) -> ModelShape:
    """The stored dtypes: torch_dtype, or quantization_config for fp8 block, MXFP4, NVFP4, AWQ and GPTQ."""
    text = raw.get("text_config")
    torch_dtype = raw.get("torch_dtype") or (text.get("torch_dtype") if isinstance(text, Mapping) else None)
    dtype = _TORCH_DTYPES.get(str(torch_dtype), Dtype.BF16)
    quantization = raw.get("quantization_config")
    if not isinstance(quantization, Mapping):
        return replace(shape, dtype=dtype)
    method = str(quantization.get("quant_method", "")).lower()
    routers = shape.hidden_size * shape.routed_experts * shape.layers if shape.hidden_size else 0
    if method == "fp8":
        return replace(shape, dtype=Dtype.FP8, unquantized_parameters=float(routers))
    if method == "mxfp4":
        # gpt-oss: only the expert MLPs are MXFP4; attention, routers and embeddings stay bf16.
        return replace(shape, dtype=dtype, expert_dtype=Dtype.MXFP4)
    if method == "modelopt" and "FP4" in str(quantization.get("quant_algo", "")).upper():
        # NVIDIA's NVFP4 MoE checkpoints quantize the experts and keep attention in 16 bits.
        if shape.is_moe:
            return replace(shape, dtype=dtype, expert_dtype=Dtype.NVFP4)
        return replace(shape, dtype=Dtype.NVFP4)
    if method == "awq":
        return replace(shape, dtype=Dtype.INT4_AWQ, unquantized_parameters=float(routers))
    if method == "gptq":
        return replace(shape, dtype=Dtype.INT4_GPTQ, unquantized_parameters=float(routers))
    return replace(shape, dtype=dtype)
