"""Sizing: pure functions from a model's shape and a cluster's GPUs to the numbers of one group.

Every function here is deterministic and free of Pulumi, pydantic and I/O, so the policy pack can
call the same ones on objects it reads back from a manifest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from kernel.catalog import (
    BYTES_PER_PARAMETER,
    DEFAULT_SHM_BASE_GIB,
    DEFAULT_SHM_PER_GPU_GIB,
    UNQUANTIZED_BYTES,
    Dtype,
    Engine,
)
from kernel.units import GIB


class Attention(StrEnum):
    """How attention caches keys and values."""

    GQA = "gqa"
    """Grouped-query (or multi-head) attention: K and V per KV head, split over TP ranks."""
    MLA = "mla"
    """Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2): one compressed latent per token and layer."""


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a model card that sizing needs.

    The mixture-of-experts and attention facts default to a dense GQA model, so a card that gives none of
    them is sized as before.
    """

    parameters: float
    dtype: Dtype
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    hidden_size: int | None = None
    vocab_size: int | None = None
    tied_embeddings: bool = False
    kv_cache_bytes: float = 2.0
    active_parameters: float | None = None
    """Parameters one token passes through (MoE); None for a dense model (all of them)."""
    expert_parameters: float = 0.0
    """Parameters of the routed experts, all layers; 0 for a dense model."""
    routed_experts: int = 0
    shared_experts: int = 0
    experts_per_token: int = 0
    expert_dtype: Dtype | None = None
    """How the routed experts are stored when it differs from dtype (gpt-oss: MXFP4 experts, bf16 rest)."""
    unquantized_parameters: float = 0.0
    """Parameters besides the embeddings kept in 16 bits in a quantized checkpoint (routers, ...)."""
    attention: Attention = Attention.GQA
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    sliding_window: int | None = None
    sliding_window_layers: int = 0
    """Layers that attend only to the last sliding_window tokens (gpt-oss: every other layer)."""

    @property
    def is_moe(self) -> bool:
        return self.expert_parameters > 0

    @property
    def dense_parameters(self) -> float:
        """Everything but the routed experts: attention, shared experts, dense layers, embeddings."""
        return self.parameters - self.expert_parameters

    @property
    def active(self) -> float:
        return self.active_parameters if self.active_parameters is not None else self.parameters

    @property
    def stored_expert_dtype(self) -> Dtype:
        return self.expert_dtype or self.dtype


def embedding_parameters(shape: ModelShape) -> float:
    if shape.hidden_size is None or shape.vocab_size is None:
        return 0.0
    tables = 1 if shape.tied_embeddings else 2
    return float(shape.vocab_size * shape.hidden_size * tables)


def _stored_bytes(parameters: float, dtype: Dtype, unquantized: float) -> float:
    """Parameters stored in dtype, of which `unquantized` stay in 16 bits when dtype is a quantized one."""
    if dtype in (Dtype.BF16, Dtype.FP16):
        return parameters * BYTES_PER_PARAMETER[dtype]
    kept = min(unquantized, parameters)
    return (parameters - kept) * BYTES_PER_PARAMETER[dtype] + kept * UNQUANTIZED_BYTES


def expert_weight_bytes(shape: ModelShape) -> float:
    """Bytes of the routed experts as loaded on GPUs."""
    return _stored_bytes(shape.expert_parameters, shape.stored_expert_dtype, 0.0)


def dense_weight_bytes(shape: ModelShape) -> float:
    """Bytes of everything but the routed experts (embeddings and kept layers in 16 bits)."""
    kept = embedding_parameters(shape) + shape.unquantized_parameters
    return _stored_bytes(shape.dense_parameters, shape.dtype, kept)


def weight_bytes(shape: ModelShape) -> float:
    """Bytes of all weights as loaded on GPUs (quantized layers packed, embeddings in 16 bits)."""
    return dense_weight_bytes(shape) + expert_weight_bytes(shape)


def expert_shards(tensor_parallel: int, data_parallel: int, expert_parallel: bool) -> int:
    """Ranks one pipeline stage's routed experts are split over.

    Without expert parallelism each DP replica shards its experts over its TP ranks; with it, vLLM and SGLang
    place whole experts on the TP x DP ranks (EP = TP x DP).
    """
    return tensor_parallel * data_parallel if expert_parallel else tensor_parallel


def weights_per_gpu(
    shape: ModelShape,
    tensor_parallel: int,
    pipeline_parallel: int,
    data_parallel: int = 1,
    expert_parallel: bool = False,
) -> float:
    """Dense weights split over TP x PP (and replicated per DP rank) plus the experts split over EP x PP."""
    dense = dense_weight_bytes(shape) / (tensor_parallel * pipeline_parallel)
    shards = expert_shards(tensor_parallel, data_parallel, expert_parallel) * pipeline_parallel
    return dense + expert_weight_bytes(shape) / shards


def kv_heads_per_gpu(kv_heads: int, tensor_parallel: int) -> int:
    """KV heads each GPU keeps: split across TP ranks, replicated once TP exceeds them (as vLLM does)."""
    return max(1, kv_heads // tensor_parallel)


def kv_bytes_per_token_per_layer(shape: ModelShape, tensor_parallel: int) -> float:
    """One token's cache in one layer on one GPU.

    MLA keeps one latent of kv_lora_rank + qk_rope_head_dim values per token, the same on every TP rank (vLLM
    and SGLang replicate it); GQA keeps K and V for this GPU's share of the KV heads.
    """
    if shape.attention is Attention.MLA:
        return (shape.kv_lora_rank + shape.qk_rope_head_dim) * shape.kv_cache_bytes
    return 2 * kv_heads_per_gpu(shape.kv_heads, tensor_parallel) * shape.head_dim * shape.kv_cache_bytes


def _stage_layers(layers: int, pipeline_parallel: int) -> int:
    return math.ceil(layers / pipeline_parallel) if layers else 0


def kv_bytes_per_token(shape: ModelShape, tensor_parallel: int, pipeline_parallel: int) -> float:
    """KV cache bytes one more token of context takes on one GPU: its full-attention layers.

    Sliding-window layers hold at most the window per sequence (see kv_cache_bytes), so a longer context does
    not grow them.
    """
    full = shape.layers - (shape.sliding_window_layers if shape.sliding_window else 0)
    return _stage_layers(full, pipeline_parallel) * kv_bytes_per_token_per_layer(shape, tensor_parallel)


def kv_cache_bytes(
    shape: ModelShape, tensor_parallel: int, pipeline_parallel: int, tokens_per_sequence: int, sequences: int
) -> float:
    """KV cache for `sequences` sequences of `tokens_per_sequence` tokens on one GPU."""
    full = kv_bytes_per_token(shape, tensor_parallel, pipeline_parallel) * tokens_per_sequence * sequences
    if not shape.sliding_window:
        return full
    window = min(shape.sliding_window, tokens_per_sequence)
    sliding_layers = _stage_layers(shape.sliding_window_layers, pipeline_parallel)
    per_token = sliding_layers * kv_bytes_per_token_per_layer(shape, tensor_parallel)
    return full + per_token * window * sequences


# Memory an engine holds on each GPU besides weights and KV cache: the CUDA context, NCCL buffers and the
# activation peak of the engine's profiling pass, checked in tests/test_memory_published.py. In the vLLM 0.19
# sweep quoted there (H100: 8192 batched tokens, 1024 sequences) that peak does not shrink with TP and grows
# with the vocabulary: 0.77 GiB for CodeLlama's 32k tokens, 1.89 GiB for Llama-3.1's 128k, 2.21-2.29 GiB for
# Qwen2.5's 152k, 3.6-4.0 GiB for Gemma's 256k. It is mostly the sampler's float32 logits for max-num-seqs
# sequences, fitted at 12 bytes per logit. The same logs show 2.06-2.21 GiB of all-reduce buffers at TP > 1,
# where NCCL_BUFFER_BYTES counts 0.5: SGLang keeps them outside --mem-fraction-static, and this estimate
# serves both engines.
CUDA_CONTEXT_BYTES = 0.5 * GIB
NCCL_BUFFER_BYTES = 0.5 * GIB
ACTIVATION_BYTES_PER_TOKEN_HIDDEN = 12.0
SAMPLER_BYTES_PER_LOGIT = 12.0
DEFAULT_BATCHED_TOKENS = 8192
DEFAULT_MAX_NUM_SEQS = 256  # the default of serving.maxNumSeqs, which the plan passes to the engine
TYPICAL_VOCAB_SIZE = 128256  # Llama-3's, for a model card that gives none


def activation_bytes(shape: ModelShape, tensor_parallel: int, batched_tokens: int, max_num_seqs: int) -> float:
    hidden = shape.hidden_size or shape.attention_heads * shape.head_dim
    hidden_states = batched_tokens * hidden * ACTIVATION_BYTES_PER_TOKEN_HIDDEN / tensor_parallel
    logits = max_num_seqs * (shape.vocab_size or TYPICAL_VOCAB_SIZE) * SAMPLER_BYTES_PER_LOGIT
    return hidden_states + logits


def overhead_bytes(
    shape: ModelShape, tensor_parallel: int, pipeline_parallel: int, batched_tokens: int, max_num_seqs: int
) -> float:
    communication = NCCL_BUFFER_BYTES if tensor_parallel * pipeline_parallel > 1 else 0.0
    return CUDA_CONTEXT_BYTES + communication + activation_bytes(shape, tensor_parallel, batched_tokens, max_num_seqs)


@dataclass(frozen=True)
class MemoryEstimate:
    """One GPU of a group: what it has and what the engine needs on it."""

    gpu_bytes: float
    utilization: float
    weights: float
    kv_cache: float
    overhead: float
    kv_bytes_per_token: float

    @property
    def usable(self) -> float:
        return self.gpu_bytes * self.utilization

    @property
    def needed(self) -> float:
        return self.weights + self.kv_cache + self.overhead

    @property
    def fits(self) -> bool:
        return self.needed <= self.usable

    @property
    def kv_tokens_available(self) -> int:
        """Tokens of KV cache left once weights and overhead are placed (0 when they do not fit)."""
        room = self.usable - self.weights - self.overhead
        return max(0, int(room // self.kv_bytes_per_token))


def estimate_memory(
    shape: ModelShape,
    *,
    tensor_parallel: int,
    pipeline_parallel: int,
    gpu_bytes: float,
    utilization: float,
    max_model_len: int,
    kv_sequences: int,
    batched_tokens: int = DEFAULT_BATCHED_TOKENS,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    data_parallel: int = 1,
    expert_parallel: bool = False,
) -> MemoryEstimate:
    """One GPU of a group of TP x PP (x DP) ranks.

    tensor_parallel is the TP of attention (vLLM: per DP rank; SGLang with dp-attention: --tp / --dp-size).
    A dense model's DP replicas each hold all of its weights and their own KV cache, so per GPU nothing
    changes; a mixture-of-experts model's routed experts are sharded over the TP x DP ranks when expert
    parallelism is on (weights per GPU = dense / (TP x PP) + experts / (EP x PP)).
    """
    per_token = kv_bytes_per_token(shape, tensor_parallel, pipeline_parallel)
    return MemoryEstimate(
        gpu_bytes=gpu_bytes,
        utilization=utilization,
        weights=weights_per_gpu(shape, tensor_parallel, pipeline_parallel, data_parallel, expert_parallel),
        kv_cache=kv_cache_bytes(shape, tensor_parallel, pipeline_parallel, max_model_len, kv_sequences),
        overhead=overhead_bytes(shape, tensor_parallel, pipeline_parallel, batched_tokens, max_num_seqs),
        kv_bytes_per_token=per_token,
    )


def engine_layout(tensor: int, data: int, dp_attention: bool, expert: bool) -> tuple[int, bool]:
    """(tensor_parallel, expert_parallel) to pass to estimate_memory for an engine's flags.

    SGLang with --enable-dp-attention: --tp spans all DP ranks, so attention runs at TP = tp / dp while the
    experts are split over the whole --tp (as if EP = TP x DP). vLLM: TP is per DP rank and EP is the switch.
    For the policy pack as much as the plan.
    """
    if dp_attention:
        return max(tensor // max(data, 1), 1), True
    return tensor, expert


@dataclass(frozen=True)
class Parallelism:
    """The rank layout of one group.

    data: vLLM --data-parallel-size (DP replicas of TP x PP each) or SGLang --dp-size with dp_attention, where
    the DP ranks live inside --tp (tensor) and do not add GPUs. expert: experts sharded over the ranks (EP).
    """

    tensor: int
    pipeline: int
    gpus_per_pod: int
    data: int = 1
    expert: bool = False
    dp_attention: bool = False

    @property
    def gpus(self) -> int:
        base = self.tensor * self.pipeline
        return base if self.dp_attention else base * self.data

    @property
    def group_size(self) -> int:
        return self.gpus // self.gpus_per_pod

    @property
    def attention_tensor(self) -> int:
        """TP of one attention replica: SGLang's dp-attention splits --tp into --dp-size groups."""
        return self.tensor // self.data if self.dp_attention else self.tensor

    @property
    def expert_parallel_size(self) -> int:
        """EP: the ranks whole experts are spread over (1 when experts are TP-sharded instead)."""
        if not self.expert:
            return 1
        return self.tensor if self.dp_attention else self.tensor * self.data


def heads_divide(shape: ModelShape, tensor_parallel: int) -> bool:
    """Attention heads split evenly over TP ranks, and KV heads either split or replicate evenly (GQA)."""
    if shape.attention_heads % tensor_parallel:
        return False
    if shape.attention is Attention.MLA:
        return True
    if shape.kv_heads >= tensor_parallel:
        return shape.kv_heads % tensor_parallel == 0
    return tensor_parallel % shape.kv_heads == 0


MAX_GPUS_PER_GROUP = 128

# Does the model fit with this TP and PP?
FitCheck = Callable[[int, int], bool]


def derive_parallelism(
    shape: ModelShape,
    *,
    gpus_per_node: int,
    fits: FitCheck,
    tensor_parallel: int | None = None,
    pipeline_parallel: int | None = None,
    gpus_per_pod: int | None = None,
    data_parallel: int = 1,
    expert_parallel: bool = False,
    dp_attention: bool = False,
) -> Parallelism | None:
    """The smallest group that fits, keeping TP inside a node and spreading PP across nodes.

    Numbers the user gave are kept; only missing ones are derived. With data parallelism the candidates are
    TP x PP per DP rank (vLLM) or the --tp that spans all DP ranks (SGLang dp-attention, a multiple of DP).
    `fits(tp, pp)` is asked with those numbers. None when no candidate fits: the rules then explain why for
    the numbers given.
    """
    for tensor, pipeline in _candidates(shape, gpus_per_node, tensor_parallel, pipeline_parallel, data_parallel,
                                        dp_attention):  # fmt: skip
        layout = Parallelism(tensor, pipeline, 1, data_parallel, expert_parallel, dp_attention)
        per_pod = gpus_per_pod or min(gpus_per_node, layout.gpus)
        if layout.gpus % per_pod == 0 and fits(tensor, pipeline):
            return Parallelism(tensor, pipeline, per_pod, data_parallel, expert_parallel, dp_attention)
    return None


def _candidates(
    shape: ModelShape,
    gpus_per_node: int,
    tensor: int | None,
    pipeline: int | None,
    data: int = 1,
    dp_attention: bool = False,
) -> list[tuple[int, int]]:
    """(TP, PP) pairs from the fewest GPUs up; for one GPU count, the widest TP first."""
    if tensor and pipeline:
        return [(tensor, pipeline)]
    if tensor:
        return [(tensor, p) for p in range(1, MAX_GPUS_PER_GROUP // tensor + 1)]
    if dp_attention:
        # SGLang: --tp spans every GPU of the group (across nodes); each DP rank's attention takes tp / dp.
        tps = [t for t in _powers_of_two(MAX_GPUS_PER_GROUP) if t % data == 0 and heads_divide(shape, t // data)]
        return [(t, pipeline or 1) for t in tps]
    replicas = max(data, 1)
    pairs = []
    for total in _powers_of_two(MAX_GPUS_PER_GROUP // replicas):
        for t in reversed(_powers_of_two(min(total, gpus_per_node))):
            p = total // t
            if t * p == total and heads_divide(shape, t) and pipeline in (None, p):
                pairs.append((t, p))
    return pairs


def _powers_of_two(limit: int) -> list[int]:
    return [2**i for i in range(limit.bit_length()) if 2**i <= limit]


def shm_floor_bytes(
    gpus_per_pod: int, base_gib: float = DEFAULT_SHM_BASE_GIB, per_gpu_gib: float = DEFAULT_SHM_PER_GPU_GIB
) -> float:
    """/dev/shm a pod needs: NCCL's shared-memory transport and Ray's object store grow with GPUs."""
    return (base_gib + per_gpu_gib * gpus_per_pod) * GIB


# Host memory a serving process takes besides /dev/shm: Python, CUDA host allocations, tokenizers
# and vLLM's CPU swap space (4 GiB per GPU by default).
HOST_BASE_BYTES = 8 * GIB
HOST_PER_GPU_BYTES = 4 * GIB


def pod_memory_bytes(gpus_per_pod: int, shm_bytes: float) -> float:
    """The pod's memory limit: /dev/shm is a memory-backed emptyDir and counts against it."""
    return shm_bytes + HOST_BASE_BYTES + HOST_PER_GPU_BYTES * gpus_per_pod


def pod_cpus(gpus_per_pod: int) -> int:
    return 2 + 2 * gpus_per_pod


ENGINE_WARMUP_SECONDS = {Engine.VLLM: 300, Engine.SGLANG: 240}
GROUP_FORMATION_SECONDS = 120
STARTUP_SAFETY_FACTOR = 1.5


def startup_budget_seconds(
    model_bytes: float, throughput_bytes_per_second: float, engine: Engine, group_size: int
) -> int:
    """Time from container start to a serving leader: read the weights, form the group, warm up."""
    load = model_bytes / throughput_bytes_per_second
    formation = GROUP_FORMATION_SECONDS if group_size > 1 else 0
    total = (load + formation + ENGINE_WARMUP_SECONDS[engine]) * STARTUP_SAFETY_FACTOR
    return int(math.ceil(total / 60) * 60)
