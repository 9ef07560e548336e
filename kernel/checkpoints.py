"""A catalog of well-known checkpoints by Hugging Face id, and the lookup of a served model by its name.

Each entry keeps the fields of the checkpoint's config.json that sizing needs (the rest of the file is
irrelevant here) and goes through the same reader as `models[i].model.configFile` (kernel/hf_config.py), so the
catalog and an imported config.json can never size one model two ways. Every entry names where its
config.json lives and the parameter count its publisher states; tests/test_models.py checks that the count
computed from the architecture is within 2% of it.

The config.json facts were checked against copies that other public projects vendor or quote, found with
the search tool (noted per entry as `checked:`); the published counts are the model cards' (or the
technical report's where the card rounds to "1T").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from kernel.catalog import Dtype
from kernel.hf_config import CardFacts, read_config
from kernel.sizing import ModelShape

HF = "https://huggingface.co/"


@dataclass(frozen=True)
class Checkpoint:
    hf_id: str
    config: dict[str, Any] = field(hash=False)
    """The config.json fields sizing reads, as the file spells them."""
    published_parameters: float
    parameters_source: str
    checked: str = ""
    """A public copy of the same facts the entry was compared with (repository and path)."""
    dtype_override: Dtype | None = None
    """Storage named by a quantization suffix of the served name (e.g. -FP8), when it differs."""

    @property
    def name(self) -> str:
        return self.hf_id.rsplit("/", 1)[-1]

    @property
    def config_source(self) -> str:
        return f"{HF}{self.hf_id}/blob/main/config.json"

    @cached_property
    def facts(self) -> CardFacts:
        return read_config(self.config)

    @property
    def shape(self) -> ModelShape:
        shape = self.facts.shape
        if self.dtype_override is None:
            return shape
        # FP4 copies of MoE checkpoints (nvidia/DeepSeek-R1-FP4, gpt-oss) quantize the experts only.
        if shape.is_moe and self.dtype_override in (Dtype.NVFP4, Dtype.MXFP4):
            return replace(shape, expert_dtype=self.dtype_override)
        return replace(shape, dtype=self.dtype_override, expert_dtype=None)

    @property
    def context_length(self) -> int:
        return self.facts.context_length

    def card_fields(self) -> dict[str, Any]:
        """The stack's model-card keys this checkpoint fills (models[i].model.preset)."""
        fields = self.facts.card_fields()
        fields["dtype"] = self.shape.dtype.value
        if self.shape.expert_dtype is not None:
            fields["expertDtype"] = self.shape.expert_dtype.value
        return fields


def _llama(hidden: int, layers: int, heads: int, intermediate: int, **extra: Any) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"], "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": 8, "intermediate_size": intermediate,
        "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", **extra,
    }  # fmt: skip


def _llama4(experts: int, step: int, context: int) -> dict[str, Any]:
    return {
        "architectures": ["Llama4ForConditionalGeneration"],
        "text_config": {
            "hidden_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8,
            "head_dim": 128, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
            "num_local_experts": experts, "num_experts_per_tok": 1, "interleave_moe_layer_step": step,
            "vocab_size": 202048, "max_position_embeddings": context, "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
    }  # fmt: skip


def _qwen3(hidden: int, layers: int, heads: int, intermediate: int) -> dict[str, Any]:
    return {
        "architectures": ["Qwen3ForCausalLM"], "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": intermediate,
        "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }  # fmt: skip


def _qwen3_moe(hidden: int, layers: int, heads: int, kv: int, experts: int, moe: int, context: int) -> dict[str, Any]:
    return {
        "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": 128, "num_experts": experts,
        "num_experts_per_tok": 8, "moe_intermediate_size": moe, "vocab_size": 151936,
        "max_position_embeddings": context, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    }  # fmt: skip


# DeepSeek-V3's block-wise fp8 (128 x 128 e4m3 weights with fp32 scales), also used by Kimi-K2.
_FP8_BLOCK = {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}


def _deepseek_v3(**changes: Any) -> dict[str, Any]:
    config = {
        "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168, "num_hidden_layers": 61,
        "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "intermediate_size": 18432,
        "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
        "first_k_dense_replace": 3, "vocab_size": 129280, "max_position_embeddings": 163840,
        "tie_word_embeddings": False, "num_nextn_predict_layers": 1, "torch_dtype": "bfloat16",
        "quantization_config": _FP8_BLOCK,
    }  # fmt: skip
    return config | changes


def _gpt_oss(layers: int, experts: int) -> dict[str, Any]:
    return {
        "architectures": ["GptOssForCausalLM"], "hidden_size": 2880, "num_hidden_layers": layers,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880,
        "num_local_experts": experts, "num_experts_per_tok": 4, "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"] * (layers // 2), "vocab_size": 201088,
        "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "quantization_config": {"quant_method": "mxfp4"},
    }  # fmt: skip


def _mixtral(hidden: int, layers: int, heads: int, intermediate: int, vocab: int, context: int) -> dict[str, Any]:
    return {
        "architectures": ["MixtralForCausalLM"], "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": 8, "intermediate_size": intermediate,
        "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": vocab, "max_position_embeddings": context,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    }  # fmt: skip


def _card(hf_id: str) -> str:
    return f"{HF}{hf_id} (model card)"


CATALOG: tuple[Checkpoint, ...] = (
    Checkpoint("meta-llama/Llama-3.1-8B-Instruct", _llama(4096, 32, 32, 14336), 8.03e9,
               _card("meta-llama/Llama-3.1-8B-Instruct") + ": 8.03B (safetensors)",
               "llm-d-planner accuracy sweep logs (jgchn/llm-d-planner accuracy/results/v0.19.0)"),
    Checkpoint("meta-llama/Llama-3.1-70B-Instruct", _llama(8192, 80, 64, 28672), 70.55e9,
               _card("meta-llama/Llama-3.1-70B-Instruct") + ": 70.6B (safetensors)"),
    Checkpoint("meta-llama/Llama-3.1-405B-Instruct", _llama(16384, 126, 128, 53248), 405.85e9,
               _card("meta-llama/Llama-3.1-405B-Instruct") + ": 406B (safetensors 405.85B)",
               "Huawei Cloud CCE LWS example (seed) and this project's examples/Pulumi.cce.yaml"),
    Checkpoint("meta-llama/Llama-3.3-70B-Instruct", _llama(8192, 80, 64, 28672), 70.55e9,
               _card("meta-llama/Llama-3.3-70B-Instruct") + ": 70.6B (safetensors)"),
    Checkpoint("meta-llama/Llama-4-Scout-17B-16E-Instruct", _llama4(16, 1, 10485760), 109e9,
               _card("meta-llama/Llama-4-Scout-17B-16E-Instruct") + ": 17B active, 109B total (incl. vision)"),
    Checkpoint("meta-llama/Llama-4-Maverick-17B-128E-Instruct", _llama4(128, 2, 1048576), 400e9,
               _card("meta-llama/Llama-4-Maverick-17B-128E-Instruct") + ": 17B active, 400B total"),
    Checkpoint("Qwen/Qwen3-8B", _qwen3(4096, 36, 32, 12288), 8.2e9, _card("Qwen/Qwen3-8B") + ": 8.2B"),
    Checkpoint("Qwen/Qwen3-32B", _qwen3(5120, 64, 64, 25600), 32.8e9, _card("Qwen/Qwen3-32B") + ": 32.8B",
               "Alibaba Cloud ACK LWS example (seed) and examples/Pulumi.ack.yaml"),
    Checkpoint("Qwen/Qwen3-30B-A3B", _qwen3_moe(2048, 48, 32, 4, 128, 768, 40960), 30.5e9,
               _card("Qwen/Qwen3-30B-A3B") + ": 30.5B total, 3.3B active",
               "zyzshishui/slime scripts/models/qwen3-30B-A3B.sh"),
    Checkpoint("Qwen/Qwen3-235B-A22B", _qwen3_moe(4096, 94, 64, 4, 128, 1536, 40960), 235e9,
               _card("Qwen/Qwen3-235B-A22B") + ": 235B total, 22B active",
               "vllm-project/vllm#21348 (KV cache per token at TP4)"),
    Checkpoint("Qwen/Qwen3-Coder-480B-A35B-Instruct", _qwen3_moe(6144, 62, 96, 8, 160, 2560, 262144), 480e9,
               _card("Qwen/Qwen3-Coder-480B-A35B-Instruct") + ": 480B total, 35B active",
               "vllm-project/recipes#12 (62 GiB of KV cache for 262144 tokens at DP8)"),
    Checkpoint("deepseek-ai/DeepSeek-V3", _deepseek_v3(), 671e9,
               _card("deepseek-ai/DeepSeek-V3") + ": 671B total, 37B active (plus 14B of the MTP module)",
               "tenstorrent/tt-metal models/demos/deepseek_v3/reference/README_WEIGHTS.md"),
    Checkpoint("deepseek-ai/DeepSeek-R1", _deepseek_v3(), 671e9,
               _card("deepseek-ai/DeepSeek-R1") + ": 671B total, 37B active",
               "sgl-project/sglang#6017 (MLA KV size per token)"),
    Checkpoint("deepseek-ai/DeepSeek-V3.1", _deepseek_v3(), 671e9,
               _card("deepseek-ai/DeepSeek-V3.1") + ": 671B total, 37B active"),
    Checkpoint("moonshotai/Kimi-K2-Instruct",
               _deepseek_v3(num_attention_heads=64, num_key_value_heads=64, n_routed_experts=384,
                            first_k_dense_replace=1, vocab_size=163840, max_position_embeddings=131072,
                            num_nextn_predict_layers=0),
               1.04e12, "Kimi K2 technical report (arXiv 2507.20534): 1.04T total, 32.6B active",
               "ParagEkbote/hf-model-inspector model_inspection_report.md (Kimi-K2-Instruct-0905)"),
    Checkpoint("zai-org/GLM-4.5",
               {"architectures": ["Glm4MoeForCausalLM"], "hidden_size": 5120, "num_hidden_layers": 92,
                "num_attention_heads": 96, "num_key_value_heads": 8, "head_dim": 128, "attention_bias": True,
                "use_qk_norm": True, "intermediate_size": 12288, "moe_intermediate_size": 1536,
                "n_routed_experts": 160, "n_shared_experts": 1, "num_experts_per_tok": 8,
                "first_k_dense_replace": 3, "vocab_size": 151552, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "num_nextn_predict_layers": 1, "torch_dtype": "bfloat16"},
               355e9, _card("zai-org/GLM-4.5") + ": 355B total, 32B active",
               "zyzshishui/slime scripts/models/glm4.5-355B-A32B.sh"),
    Checkpoint("openai/gpt-oss-20b", _gpt_oss(24, 32), 20.9e9,
               _card("openai/gpt-oss-20b") + ": 21B total (20.9B), 3.6B active",
               "RealTapeL/SemiIP-Summary src/config/model_config.py; vLLM's GptOssConfig"),
    Checkpoint("openai/gpt-oss-120b", _gpt_oss(36, 128), 116.8e9,
               _card("openai/gpt-oss-120b") + ": 117B total (116.8B), 5.1B active",
               "vLLM's GptOssConfig defaults (the 120b shape)"),
    Checkpoint("mistralai/Mixtral-8x7B-Instruct-v0.1", _mixtral(4096, 32, 32, 14336, 32000, 32768), 46.7e9,
               _card("mistralai/Mixtral-8x7B-Instruct-v0.1") + ": 46.7B total, 12.9B active",
               "hiyouga/LlamaFactory#2403 (config.json quoted in the log)"),
    Checkpoint("mistralai/Mixtral-8x22B-Instruct-v0.1", _mixtral(6144, 56, 48, 16384, 32768, 65536), 141e9,
               _card("mistralai/Mixtral-8x22B-Instruct-v0.1") + ": 141B total, 39B active"),
)  # fmt: skip

# Suffixes of quantized copies (`Qwen3-235B-A22B-FP8`, `...-AWQ`) and the storage they name; release tags
# (`-Instruct-2507`, `-0528`) name the same architecture.
_SUFFIXES: tuple[tuple[str, Dtype | None], ...] = (
    ("-fp8-dynamic", Dtype.FP8), ("-fp8", Dtype.FP8), ("-awq", Dtype.INT4_AWQ), ("-gptq-int4", Dtype.INT4_GPTQ),
    ("-gptq", Dtype.INT4_GPTQ), ("-nvfp4", Dtype.NVFP4), ("-fp4", Dtype.NVFP4), ("-mxfp4", Dtype.MXFP4),
    ("-bf16", Dtype.BF16), ("-instruct", None), ("-thinking", None), ("-chat", None), ("-base", None),
)  # fmt: skip
_RELEASE_TAG = re.compile(r"-(v\d+(\.\d+)?|\d{4})$")


def _aliases(checkpoint: Checkpoint) -> set[str]:
    name = checkpoint.name.lower()
    base = re.sub(r"-instruct(-v\d+(\.\d+)?)?$", "", name)
    return {name, base}


_BY_ID = {c.hf_id.lower(): c for c in CATALOG}
_ALIASES = sorted(((alias, c) for c in CATALOG for alias in _aliases(c)), key=lambda pair: -len(pair[0]))


def find_checkpoint(model: str) -> Checkpoint | None:
    """The catalog entry a model reference names: an HF id, or a path or served name ending in its name.

    Case-insensitive; trailing quantization suffixes (-FP8, -AWQ, -NVFP4, ...) and release tags are accepted,
    and a quantization suffix sets the storage dtype: `/models/Qwen3-235B-A22B-FP8` is Qwen3-235B-A22B in fp8.
    """
    text = model.strip().rstrip("/").lower()
    if text in _BY_ID:
        return _BY_ID[text]
    name = re.split(r"[/\\]", text)[-1]
    override: Dtype | None = None
    while name:
        found = _match(name)
        if found is not None:
            if override is None or override is found.shape.stored_expert_dtype:
                return found
            return replace(found, dtype_override=override)
        stripped, dtype = _strip_suffix(name)
        if stripped == name:
            return None
        name, override = stripped, override or dtype
    return None


def _match(name: str) -> Checkpoint | None:
    for alias, checkpoint in _ALIASES:
        if name == alias or (name.endswith(alias) and name[-len(alias) - 1] in "-_."):
            return checkpoint
    return None


def _strip_suffix(name: str) -> tuple[str, Dtype | None]:
    for suffix, dtype in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix), dtype
    tagged = _RELEASE_TAG.search(name)
    if tagged and tagged.start() > 0:
        return name[: tagged.start()], None
    return name, None


def checkpoint_by_id(hf_id: str) -> Checkpoint | None:
    """Exactly one catalog entry by its Hugging Face id (case-insensitive): models[i].model.preset."""
    return _BY_ID.get(hf_id.strip().lower())


def catalog_ids() -> list[str]:
    return [c.hf_id for c in CATALOG]


def catalog_markdown() -> str:
    """The README's catalog table (tests/test_models.py checks that README.md has it as printed here)."""
    rows = [
        "| `preset` | total / active parameters | experts (per token) | attention | stored as | context |",
        "|---|---|---|---|---|---|",
    ]
    for checkpoint in CATALOG:
        shape = checkpoint.shape
        experts = f"{shape.routed_experts} ({shape.experts_per_token})" if shape.is_moe else "dense"
        stored = shape.dtype.value + (f", experts {shape.expert_dtype.value}" if shape.expert_dtype else "")
        attention = "MLA" if shape.attention.value == "mla" else "GQA"
        if shape.sliding_window:
            attention += f", {shape.sliding_window_layers} layers of {shape.sliding_window}-token window"
        rows.append(
            f"| `{checkpoint.hf_id}` | {shape.parameters / 1e9:.1f}B / {shape.active / 1e9:.1f}B | {experts} | "
            f"{attention} | {stored} | {checkpoint.context_length} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(catalog_markdown())
