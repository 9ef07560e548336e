"""Sizing: pure functions from a model's shape and a cluster's GPUs to the numbers of one group.

Every function here is deterministic and free of Pulumi, pydantic and I/O, so the policy pack can
call the same ones on objects it reads back from a manifest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from plan.catalog import (
    BYTES_PER_PARAMETER,
    DEFAULT_SHM_BASE_GIB,
    DEFAULT_SHM_PER_GPU_GIB,
    UNQUANTIZED_BYTES,
    Dtype,
    Engine,
)
from plan.units import GIB


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a model card that sizing needs."""

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


def embedding_parameters(shape: ModelShape) -> float:
    if shape.hidden_size is None or shape.vocab_size is None:
        return 0.0
    tables = 1 if shape.tied_embeddings else 2
    return float(shape.vocab_size * shape.hidden_size * tables)


def weight_bytes(shape: ModelShape) -> float:
    """Bytes of all weights as loaded on GPUs (quantized layers packed, embeddings in 16 bits)."""
    per_parameter = BYTES_PER_PARAMETER[shape.dtype]
    if shape.dtype in (Dtype.BF16, Dtype.FP16):
        return shape.parameters * per_parameter
    embeddings = min(embedding_parameters(shape), shape.parameters)
    return (shape.parameters - embeddings) * per_parameter + embeddings * UNQUANTIZED_BYTES


def kv_heads_per_gpu(kv_heads: int, tensor_parallel: int) -> int:
    """KV heads each GPU keeps: split across TP ranks, replicated once TP exceeds them (as vLLM does)."""
    return max(1, kv_heads // tensor_parallel)


def kv_bytes_per_token(shape: ModelShape, tensor_parallel: int, pipeline_parallel: int) -> float:
    """KV cache bytes one token takes on one GPU: K and V, for this GPU's layers and heads."""
    layers = math.ceil(shape.layers / pipeline_parallel)
    heads = kv_heads_per_gpu(shape.kv_heads, tensor_parallel)
    return 2 * layers * heads * shape.head_dim * shape.kv_cache_bytes


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

    A dense model's DP replicas each hold all of its weights and their own KV cache, so per GPU nothing
    changes; data_parallel and expert_parallel matter for mixture-of-experts shapes, whose experts are
    sharded over the TP x DP ranks when expert parallelism is on.
    """
    per_token = kv_bytes_per_token(shape, tensor_parallel, pipeline_parallel)
    return MemoryEstimate(
        gpu_bytes=gpu_bytes,
        utilization=utilization,
        weights=weight_bytes(shape) / (tensor_parallel * pipeline_parallel),
        kv_cache=per_token * max_model_len * kv_sequences,
        overhead=overhead_bytes(shape, tensor_parallel, pipeline_parallel, batched_tokens, max_num_seqs),
        kv_bytes_per_token=per_token,
    )


@dataclass(frozen=True)
class Parallelism:
    tensor: int
    pipeline: int
    gpus_per_pod: int

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline

    @property
    def group_size(self) -> int:
        return self.gpus // self.gpus_per_pod


def heads_divide(shape: ModelShape, tensor_parallel: int) -> bool:
    """Attention heads split evenly over TP ranks, and KV heads either split or replicate evenly."""
    if shape.attention_heads % tensor_parallel:
        return False
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
) -> Parallelism | None:
    """The smallest group that fits, keeping TP inside a node and spreading PP across nodes.

    Numbers the user gave are kept; only missing ones are derived. None when no candidate fits: the
    rules then explain why for the numbers given.
    """
    for tensor, pipeline in _candidates(shape, gpus_per_node, tensor_parallel, pipeline_parallel):
        per_pod = gpus_per_pod or min(gpus_per_node, tensor * pipeline)
        if (tensor * pipeline) % per_pod == 0 and fits(tensor, pipeline):
            return Parallelism(tensor, pipeline, per_pod)
    return None


def _candidates(
    shape: ModelShape, gpus_per_node: int, tensor: int | None, pipeline: int | None
) -> list[tuple[int, int]]:
    """(TP, PP) pairs from the fewest GPUs up; for one GPU count, the widest TP first."""
    if tensor and pipeline:
        return [(tensor, pipeline)]
    if tensor:
        return [(tensor, p) for p in range(1, MAX_GPUS_PER_GROUP // tensor + 1)]
    pairs = []
    for total in _powers_of_two(MAX_GPUS_PER_GROUP):
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
