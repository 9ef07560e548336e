"""The per-GPU memory estimate of kernel.sizing against footprints that vLLM and SGLang logged in public.

Each row quotes one startup log: the model's shape (from its config.json), TP and PP, the engine settings the
log shows, and the memory the log reports per GPU. Both engines print GiB, even where they write "GB".

* vLLM 0.19 splits `gpu_memory_utilization` x GPU memory into "Total non KV cache memory" (weights, activation
  peak, non-torch memory) and "Available KV cache memory"; the total here is their sum.
* SGLang logs the weights ("Load weight end ... mem usage"), the K and V pools, and the free memory after each
  step; the total here is the memory those steps took, as each row says.

The estimate gets the token capacity the log reports, so it is compared with the same KV cache the engine
allocated; everything else (weights, KV bytes per token, runtime overhead) comes from kernel.sizing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from kernel.catalog import Dtype, Engine
from kernel.checkpoints import find_checkpoint
from kernel.sizing import (
    Attention,
    MemoryEstimate,
    ModelShape,
    estimate_memory,
    kv_bytes_per_token,
    kv_cache_bytes,
    weight_bytes,
    weights_per_gpu,
)
from kernel.units import GIB

# ---- model shapes (config.json of each model; parameters from the safetensors index) -------------------------

LLAMA_31_8B = ModelShape(
    parameters=8.030261248e9, dtype=Dtype.BF16, layers=32, attention_heads=32, kv_heads=8, head_dim=128,
    hidden_size=4096, vocab_size=128256,
)  # fmt: skip
LLAMA_33_70B_FP8 = ModelShape(
    parameters=70.553706496e9, dtype=Dtype.FP8, layers=80, attention_heads=64, kv_heads=8, head_dim=128,
    hidden_size=8192, vocab_size=128256,
)  # fmt: skip
QWEN25_72B = ModelShape(
    parameters=72.706203648e9, dtype=Dtype.BF16, layers=80, attention_heads=64, kv_heads=8, head_dim=128,
    hidden_size=8192, vocab_size=152064,
)  # fmt: skip
QWEN3_30B_A3B = ModelShape(
    parameters=30.532122624e9, dtype=Dtype.BF16, layers=48, attention_heads=32, kv_heads=4, head_dim=128,
    hidden_size=2048, vocab_size=151936,
)  # fmt: skip
QWQ_32B = ModelShape(
    parameters=32.763876352e9, dtype=Dtype.BF16, layers=64, attention_heads=40, kv_heads=8, head_dim=128,
    hidden_size=5120, vocab_size=152064,
)  # fmt: skip


@dataclass(frozen=True)
class Footprint:
    """One GPU of one published deployment, as its startup log reports it (GiB)."""

    name: str
    source: str
    engine: Engine
    gpu: str
    shape: ModelShape
    tensor_parallel: int
    pipeline_parallel: int
    max_model_len: int
    batched_tokens: int  # vLLM max_num_batched_tokens, SGLang chunked_prefill_size
    max_num_seqs: int  # vLLM max_num_seqs, SGLang max_running_requests
    kv_tokens: int
    weights_gib: float
    kv_cache_gib: float
    total_gib: float

    @property
    def overhead_gib(self) -> float:
        """What the log counts besides weights and KV cache: activations, CUDA context, communication."""
        return self.total_gib - self.weights_gib - self.kv_cache_gib


# The vLLM 0.19 rows are one accuracy sweep of the llm-d planner (PR llm-d-incubation/llm-d-planner#205): H100
# 80GB (79.19 GiB), gpu_memory_utilization 0.95 (75.23 GiB), max_model_len 8192, and vLLM's H100 defaults of
# 8192 batched tokens and 1024 sequences ("Defaulting max_num_seqs to 1024 for OPENAI_API_SERVER usage context").
SWEEP = "https://github.com/jgchn/llm-d-planner/blob/6417620b546c621155b3f2814b994f7abd6d18e8/accuracy/results/v0.19.0/logs/"
H100 = "H100 80GB, 79.19 GiB"


def vllm_019(name: str, log: str, shape: ModelShape, tp: int, pp: int, **logged: float) -> Footprint:
    """A row of the sweep; `non_kv_gib` is the log's "Total non KV cache memory", added to the KV cache."""
    return Footprint(
        name=name, source=SWEEP + log, engine=Engine.VLLM, gpu=H100, shape=shape, tensor_parallel=tp,
        pipeline_parallel=pp, max_model_len=8192, batched_tokens=8192, max_num_seqs=1024,
        kv_tokens=int(logged["kv_tokens"]), weights_gib=logged["weights_gib"], kv_cache_gib=logged["kv_cache_gib"],
        total_gib=logged["non_kv_gib"] + logged["kv_cache_gib"],
    )  # fmt: skip


PUBLISHED = [
    vllm_019("vllm-0.19 Llama-3.1-8B TP1", "meta-llama-llama-3-1-8b---h100-80gb--tp1pp1dp1--8192.log",
             LLAMA_31_8B, 1, 1, weights_gib=14.99, non_kv_gib=17.12, kv_cache_gib=58.11, kv_tokens=476_016),
    vllm_019("vllm-0.19 Llama-3.1-8B TP4", "meta-llama-llama-3-1-8b---h100-80gb--tp4pp1dp1--8192.log",
             LLAMA_31_8B, 4, 1, weights_gib=3.77, non_kv_gib=7.79, kv_cache_gib=67.44, kv_tokens=2_209_792),
    # The first pipeline stage logs its profile; it holds no sampler, so its activation peak is 1.10 GiB.
    vllm_019("vllm-0.19 Llama-3.1-8B PP2", "meta-llama-llama-3-1-8b---h100-80gb--tp1pp2dp1--8192.log",
             LLAMA_31_8B, 1, 2, weights_gib=7.51, non_kv_gib=8.69, kv_cache_gib=66.54, kv_tokens=1_075_312),
    vllm_019("vllm-0.19 Llama-3.3-70B-FP8 TP2", "fp8dyn-llama-3-3-70b--h100-80gb--tp2pp1dp1--8192.log",
             LLAMA_33_70B_FP8, 2, 1, weights_gib=33.88, non_kv_gib=37.95, kv_cache_gib=37.28, kv_tokens=244_304),
    vllm_019("vllm-0.19 Qwen2.5-72B TP2", "qwen-qwen2-5-72b-instruc--h100-80gb--tp2pp1dp1--8192.log",
             QWEN25_72B, 2, 1, weights_gib=67.80, non_kv_gib=72.19, kv_cache_gib=3.04, kv_tokens=19_920),
    vllm_019("vllm-0.19 Qwen3-30B-A3B TP1", "qwen-qwen3-30b-a3b--h100-80gb--tp1pp1dp1--8192.log",
             QWEN3_30B_A3B, 1, 1, weights_gib=56.88, non_kv_gib=59.82, kv_cache_gib=15.41, kv_tokens=168_288),
    # "Load weight end ... avail mem=63.48 GB, mem usage=15.11 GB", "KV Cache is allocated. #tokens: 442750,
    # K size: 27.02 GB, V size: 27.02 GB", "Memory pool end. avail mem=8.26 GB". The log shows neither the chunk
    # size nor the request limit (the project's defaults are used); the total is what loading and the pools took.
    Footprint(
        name="sglang Llama-3.1-8B TP1", source="https://github.com/sgl-project/sglang/pull/4760",
        engine=Engine.SGLANG, gpu="80 GB (not named)", shape=LLAMA_31_8B, tensor_parallel=1, pipeline_parallel=1,
        max_model_len=131072, batched_tokens=8192, max_num_seqs=256, kv_tokens=442_750, weights_gib=15.11,
        kv_cache_gib=2 * 27.02, total_gib=15.11 + 63.48 - 8.26,
    ),
    # SGLang 0.4.3.post4 on 4x L4 (g6.12xlarge, 23034 MiB each): "Load weight end ... mem usage=15.54 GB",
    # "#tokens: 46611, K size: 1.42 GB, V size: 1.42 GB", "Capture cuda graph end ... avail mem=0.53 GB",
    # "max_total_num_tokens=46611, chunked_prefill_size=2048, ... max_running_requests=2049, context_len=131072".
    # The total is the memory in use once serving starts: the GPU's 23034 MiB less the 0.53 GiB left free. Besides
    # weights and KV it holds the req-to-token pool (2049 requests x 131072 positions x 4 bytes = 1.0 GiB), CUDA
    # graphs (0.93 GiB) and the context; SGLang reserves no sampler peak, so this row checks the total, and the
    # overhead only roughly (both grow with max_running_requests).
    Footprint(
        name="sglang QwQ-32B TP4",
        source="https://github.com/didier-durand/llms-in-clouds/blob/3e1df42ab328cb05c90df01ef331a1214ed6e336/docs/sglang.md",
        engine=Engine.SGLANG, gpu="L4 24GB", shape=QWQ_32B, tensor_parallel=4, pipeline_parallel=1,
        max_model_len=131072, batched_tokens=2048, max_num_seqs=2049, kv_tokens=46_611, weights_gib=15.54,
        kv_cache_gib=2 * 1.42, total_gib=23034 / 1024 - 0.53,
    ),
]  # fmt: skip

IDS = [row.name for row in PUBLISHED]


def estimate(row: Footprint) -> MemoryEstimate:
    """The project's estimate for the row's deployment, its KV cache sized for the tokens the log reports."""
    return estimate_memory(
        row.shape,
        tensor_parallel=row.tensor_parallel,
        pipeline_parallel=row.pipeline_parallel,
        gpu_bytes=row.total_gib * GIB,
        utilization=1.0,
        max_model_len=row.kv_tokens,
        kv_sequences=1,
        batched_tokens=row.batched_tokens,
        max_num_seqs=row.max_num_seqs,
    )


def test_the_table_has_at_least_five_sourced_footprints_from_both_engines() -> None:
    assert len(PUBLISHED) >= 5
    assert all(row.source.startswith("https://github.com/") for row in PUBLISHED)
    assert {row.engine for row in PUBLISHED} == set(Engine)


@pytest.mark.parametrize("row", PUBLISHED, ids=IDS)
def test_logged_weight_bytes_are_parameters_times_bytes_per_parameter(row: Footprint) -> None:
    logged = row.weights_gib * GIB * row.tensor_parallel * row.pipeline_parallel

    assert weight_bytes(row.shape) == pytest.approx(logged, rel=0.03)


@pytest.mark.parametrize("row", PUBLISHED, ids=IDS)
def test_weights_per_gpu_are_within_10_percent_of_the_log(row: Footprint) -> None:
    assert estimate(row).weights / GIB == pytest.approx(row.weights_gib, rel=0.10)


@pytest.mark.parametrize("row", PUBLISHED, ids=IDS)
def test_kv_cache_for_the_logged_tokens_is_within_3_percent_of_the_log(row: Footprint) -> None:
    assert estimate(row).kv_cache / GIB == pytest.approx(row.kv_cache_gib, rel=0.03)


@pytest.mark.parametrize("row", PUBLISHED, ids=IDS)
def test_full_estimate_is_within_10_percent_of_the_logged_total(row: Footprint) -> None:
    assert estimate(row).needed / GIB == pytest.approx(row.total_gib, rel=0.10)


@pytest.mark.parametrize("row", PUBLISHED, ids=IDS)
def test_runtime_overhead_is_within_2_gib_of_the_log(row: Footprint) -> None:
    """Tighter than the total allows: on an 80 GB GPU the KV cache would hide an overhead several times off."""
    assert estimate(row).overhead / GIB == pytest.approx(row.overhead_gib, abs=2.0)


# ---- mixture-of-experts, MLA and FP4 checkpoints ---------------------------------------------------------------
#
# These logs report the weights per GPU or the KV cache (tokens and bytes), not always both, so each row checks
# what its log shows, each within 10%. The shapes come from the catalog (kernel/checkpoints.py), that is from the
# checkpoints' config.json through the same reader as `models[i].model.configFile`.


@dataclass(frozen=True)
class MoeFootprint:
    name: str
    source: str
    engine: Engine
    checkpoint: str
    tensor_parallel: int
    weights_gib: float | None = None
    kv_tokens: int | None = None
    kv_cache_gib: float | None = None
    pipeline_parallel: int = 1
    data_parallel: int = 1
    expert_parallel: bool = False
    dtype: Dtype | None = None

    @property
    def shape(self) -> ModelShape:
        found = find_checkpoint(self.checkpoint)
        assert found is not None, self.checkpoint
        return replace(found.shape, dtype=self.dtype) if self.dtype else found.shape


MOE_PUBLISHED = [
    # vLLM 0.10.1 on one H100: "Model loading took 65.9651 GiB" (Marlin MXFP4 kernels, H100 has no FP4 units).
    # MXFP4 experts (4.25 bits each) and bf16 attention/embeddings: 60.7 GiB before the kernels' padding.
    MoeFootprint("vllm-0.10.1 gpt-oss-120b TP1 (MXFP4)", "https://github.com/vllm-project/vllm/issues/23278",
                 Engine.VLLM, "openai/gpt-oss-120b", 1, weights_gib=65.9651),
    # vLLM 0.14.1 on one H100, Triton MXFP4 backend: "Model loading took 64.38 GiB memory".
    MoeFootprint("vllm-0.14.1 gpt-oss-120b TP1 (MXFP4)", "https://github.com/vllm-project/vllm/issues/33155",
                 Engine.VLLM, "openai/gpt-oss-120b", 1, weights_gib=64.38),
    # vLLM 0.8.5 on 4 x A10: "Model loading took 14.2474 GiB" per rank (bf16, 128 experts TP-sharded).
    MoeFootprint("vllm-0.8.5 Qwen3-30B-A3B TP4", "https://github.com/vllm-project/vllm/issues/17469",
                 Engine.VLLM, "Qwen/Qwen3-30B-A3B", 4, weights_gib=14.2474),
    # Qwen3-235B-A22B-FP8 on 4 x H100, both engines: vLLM "Available KV cache memory: 8.11 GiB", "GPU KV cache size:
    # 178,880 tokens"; SGLang "#tokens: 367404, K size: 8.23 GB, V size: 8.23 GB". 4 KV heads over TP4: one per GPU.
    MoeFootprint("vllm Qwen3-235B-A22B-FP8 TP4 KV", "https://github.com/vllm-project/vllm/issues/21348",
                 Engine.VLLM, "/models/Qwen3-235B-A22B-FP8", 4, kv_tokens=178_880, kv_cache_gib=8.11),
    MoeFootprint("sglang Qwen3-235B-A22B-FP8 TP4 KV", "https://github.com/vllm-project/vllm/issues/21348",
                 Engine.SGLANG, "/models/Qwen3-235B-A22B-FP8", 4, kv_tokens=367_404, kv_cache_gib=2 * 8.23),
    # SGLang, DeepSeek-V3 with dp-attention (8 DP ranks): "KV Cache is allocated. #tokens: 161488, KV size: 10.57 GB".
    # MLA: 61 layers x (512 + 64) x 2 bytes per token on every rank, not divided by TP (a per-head formula over 128
    # heads of 192 + 128 dims would give 80x that).
    MoeFootprint("sglang DeepSeek-V3 DP-attention MLA KV", "https://github.com/sgl-project/sglang/issues/6017",
                 Engine.SGLANG, "deepseek-ai/DeepSeek-V3", 8, kv_tokens=161_488, kv_cache_gib=10.57,
                 data_parallel=8, expert_parallel=True),
    # SGLang, DeepSeek-V3 at TP2, --max-total-tokens 10000: "KV Cache is allocated. #tokens: 10000, KV size: 0.65 GB".
    MoeFootprint("sglang DeepSeek-V3 TP2 MLA KV", "https://github.com/kvcache-ai/ktransformers/issues/1804",
                 Engine.SGLANG, "deepseek-ai/DeepSeek-V3", 2, kv_tokens=10_000, kv_cache_gib=0.65),
    # vLLM, Qwen3-Coder-480B-A35B-FP8 with -dp=8 --enable-expert-parallel (TP1 per DP rank): "To serve at least one
    # request with the models's max seq len (262144), (62.00 GiB KV cache is needed".
    MoeFootprint("vllm Qwen3-Coder-480B-A35B-FP8 DP8 EP KV", "https://github.com/vllm-project/recipes/pull/12",
                 Engine.VLLM, "/models/Qwen3-Coder-480B-A35B-Instruct-FP8", 1, kv_tokens=262_144,
                 kv_cache_gib=62.00, data_parallel=8, expert_parallel=True),
]  # fmt: skip

MOE_IDS = [row.name for row in MOE_PUBLISHED]


def test_the_moe_table_has_at_least_four_sourced_rows_with_mla_fp4_and_both_engines() -> None:
    assert len(MOE_PUBLISHED) >= 4
    assert all(row.source.startswith("https://github.com/") for row in MOE_PUBLISHED)
    assert {row.engine for row in MOE_PUBLISHED} == set(Engine)
    shapes = [row.shape for row in MOE_PUBLISHED]
    assert any(s.attention is Attention.MLA for s in shapes)
    assert any(s.expert_dtype is Dtype.MXFP4 for s in shapes)
    assert all(s.is_moe for s in shapes)


@pytest.mark.parametrize("row", [r for r in MOE_PUBLISHED if r.weights_gib], ids=lambda r: r.name)
def test_moe_weights_per_gpu_are_within_10_percent_of_the_log(row: MoeFootprint) -> None:
    estimated = weights_per_gpu(
        row.shape, row.tensor_parallel, row.pipeline_parallel, row.data_parallel, row.expert_parallel
    )
    assert estimated / GIB == pytest.approx(row.weights_gib, rel=0.10)


@pytest.mark.parametrize("row", [r for r in MOE_PUBLISHED if r.kv_tokens], ids=lambda r: r.name)
def test_moe_kv_cache_for_the_logged_tokens_is_within_10_percent_of_the_log(row: MoeFootprint) -> None:
    assert row.kv_tokens is not None
    attention_tp = row.tensor_parallel // row.data_parallel if row.engine is Engine.SGLANG else row.tensor_parallel
    estimated = kv_cache_bytes(row.shape, max(attention_tp, 1), row.pipeline_parallel, row.kv_tokens, 1)
    assert estimated / GIB == pytest.approx(row.kv_cache_gib, rel=0.10)


def test_a_per_head_formula_would_overstate_deepseeks_kv_cache_tens_of_times() -> None:
    """Why MLA needs its own formula: K and V per head, as for GQA, is what the issue calls 25x to 70x off."""
    mla = find_checkpoint("deepseek-ai/DeepSeek-V3")
    assert mla is not None
    per_head = replace(mla.shape, attention=Attention.GQA)
    ratio = kv_bytes_per_token(per_head, 8, 1) / kv_bytes_per_token(mla.shape, 8, 1)
    assert ratio > 5
    assert kv_bytes_per_token(mla.shape, 8, 1) == kv_bytes_per_token(mla.shape, 1, 1) == 61 * 576 * 2
