"""gpu-memory and gpu-memory-unverified: do a LeaderWorkerSet's weights fit on its GPUs?

One assessment serves both policies: what it can prove does not fit is denied (gpu-memory, mandatory);
what it cannot judge is reported with the reason (gpu-memory-unverified, advisory). Nothing passes
silently because a number was missing.

The numbers:
* TP and PP from the server's command (kernel.commands.read_flags), the fraction of GPU memory the
  engine may use from --gpu-memory-utilization / --mem-fraction-static (else the engine default);
* the GPU from the pod's nodeSelector or required node affinity on the GPU feature discovery labels
  (nvidia.com/gpu.memory wins over the product), else the cluster default of the policy config, the
  smallest one when leader and workers or affinity terms allow several;
* the model from the inference.lws.dev/* annotations our components write (the full shape: weights,
  KV cache for max-model-len tokens, runtime, by kernel.sizing.estimate_memory with the command's data and
  expert parallelism); else from the built-in catalog when the served model is one of its checkpoints
  (kernel.checkpoints.find_checkpoint: the same full shape for --max-model-len or the model's context,
  stored as --quantization says); weights that cannot fit are denied, a KV cache for the whole context
  that may not fit is advice. Else from the parameter count in the served model's name and the storage
  type from flags or name (fp8, int4, MXFP4 for gpt-oss and *MXFP4*, NVFP4 for *NVFP4*/*FP4* and
  modelopt_fp4): then the weights per GPU plus a fixed runtime overhead (runtimeOverheadGiB) must fit.
  With expert parallelism the weights are split over TP x PP x DP, a lower bound, so only what cannot
  fit even then is denied.
* accelerators other than nvidia.com/gpu (AMD, Ascend, TPU) have no product memory the pack knows:
  unverified. DisaggregatedSet roles are assessed like LeaderWorkerSets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kernel.annotations import GPU_RESOURCE, PREFIX, ModelFacts, read_model_annotations
from kernel.checkpoints import Checkpoint, find_checkpoint
from kernel.rules import check_memory_fit
from kernel.sizing import (
    DEFAULT_MAX_NUM_SEQS,
    MemoryEstimate,
    ModelShape,
    engine_layout,
    estimate_memory,
    weight_bytes,
)
from kernel.units import MIB, fmt_gib
from lws_guard import manifest
from lws_guard.serving import DEFAULT_FRACTION, FRACTION_FLAG, Server, find_server, parameter_count, storage
from lws_guard.settings import Settings

KIND = "LeaderWorkerSet"
# Longer annotation values are no numbers a model has (and int() of them is slow or refused).
_MAX_ANNOTATION = 64
ANNOTATIONS = "the inference.lws.dev/* annotations"


@dataclass
class Assessment:
    denials: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Gpu:
    label: str
    bytes: float
    source: str


@dataclass(frozen=True)
class Weights:
    """The whole model's weights and where their size comes from, for the weights-only check."""

    total_bytes: float
    description: str
    upper_bound: bool = False


def check_gpu_memory(resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = "") -> list[str]:
    return assess(resource_type, props, settings, name=name).denials


def check_gpu_memory_unverified(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    return assess(resource_type, props, settings, name=name).unverified


def assess(resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = "") -> Assessment:
    """Every LeaderWorkerSet the resource declares (itself, or the roles of a DisaggregatedSet)."""
    result = Assessment()
    for view in manifest.lws_views(resource_type, props, name):
        _assess_group(view.who, view.props, settings, result)
    return result


def _assess_group(who: str, props: Mapping[str, Any], settings: Settings, result: Assessment) -> None:
    def unverified(reason: str) -> None:
        result.unverified.append(f"{who}: cannot verify that the model fits in GPU memory: {reason}")

    if not manifest.pod_gpus(manifest.leader_spec(props)) and not manifest.pod_gpus(manifest.worker_spec(props)):
        return unverified(f"no container of the leader or workers requests {GPU_RESOURCE} (or another accelerator)")
    other = _other_accelerator(props)
    if other:
        return unverified(
            f"its containers request {other}; the pack knows the memory of {GPU_RESOURCE} products only "
            "(nvidia.com/gpu.product, gpuMemoryMiB)"
        )
    server = find_server(props)
    if server is None:
        return unverified(
            "no container runs a vLLM or SGLang server (no --model, --model-path or tensor-parallel flag "
            "in the leader's or workers' command)"
        )
    degrees = _degrees(server)
    if isinstance(degrees, str):
        return unverified(degrees)
    tp, pp, dp = degrees
    expert_parallel = "expert" in server.flags.switches
    fraction = server.flags.number("fraction")
    utilization = DEFAULT_FRACTION[server.engine] if fraction is None else fraction
    if not 0.0 < utilization <= 1.0:
        return unverified(f"{FRACTION_FLAG[server.engine]} is {utilization:g}, not a fraction in (0, 1]")
    gpu = resolve_gpu(props, settings)
    if isinstance(gpu, str):
        return unverified(gpu)

    facts = _model_facts(props)
    if isinstance(facts, str):
        return unverified(facts)
    model_source = ANNOTATIONS
    from_catalog = False
    if facts is None:
        checkpoint = _catalog_checkpoint(server)
        if isinstance(checkpoint, str):
            return unverified(checkpoint)
        if checkpoint is not None:
            facts = ModelFacts(checkpoint.shape, server.flags.integer("context") or checkpoint.context_length, 1)
            served = server.flags.values.get("model")
            model_source = f"the built-in catalog ({checkpoint.hf_id} in {facts.shape.dtype.value}, served as {served})"
            from_catalog = True
    if facts is not None:
        max_len = facts.max_model_len or server.flags.integer("context")
        if max_len:
            attention_tp, expert_parallel = engine_layout(
                tp, dp, "dp_attention" in server.flags.switches, expert_parallel
            )
            estimate = estimate_memory(
                facts.shape,
                tensor_parallel=attention_tp,
                pipeline_parallel=pp,
                gpu_bytes=gpu.bytes,
                utilization=utilization,
                max_model_len=max_len,
                kv_sequences=facts.kv_sequences,
                max_num_seqs=server.flags.integer("sequences") or DEFAULT_MAX_NUM_SEQS,
                data_parallel=dp,
                expert_parallel=expert_parallel,
            )
            findings = check_memory_fit(
                estimate,
                gpu_product=gpu.label,
                tensor_parallel=tp,
                pipeline_parallel=pp,
                kv_tokens=max_len * facts.kv_sequences,
            )
            where = f" (GPU from {gpu.source}; model from {model_source})"
            messages = [f"{who}: {f.message}{where}" for f in findings]
            if from_catalog and messages and estimate.weights + estimate.overhead <= estimate.usable:
                # The weights fit; only the KV cache for the whole context may not. The engine's own
                # profile decides that at startup, within our estimate's margin: advice, not a denial.
                result.unverified += [
                    f"{m}; the weights fit, so set --max-model-len (vLLM) or --context-length (SGLang) "
                    "to what the service needs"
                    for m in messages
                ]
            else:
                result.denials += messages
            return None
        weights = Weights(
            weight_bytes(facts.shape),
            f"{facts.shape.parameters / 1e9:g}B parameters in {facts.shape.dtype.value} from {ANNOTATIONS}",
        )
    else:
        found = _weights_from_name(server)
        if isinstance(found, str):
            return unverified(found)
        weights = found

    # With expert parallelism the experts (most of an MoE's weights) spread over TP x DP GPUs: dividing by
    # the data-parallel degree too gives a lower bound, so only what cannot fit even then is denied.
    shards = tp * pp * (dp if expert_parallel else 1)
    estimate = MemoryEstimate(
        gpu_bytes=gpu.bytes,
        utilization=utilization,
        weights=weights.total_bytes / shards,
        kv_cache=0.0,
        overhead=settings.runtime_overhead_bytes,
        kv_bytes_per_token=math.inf,
    )
    if estimate.fits:
        return None
    split = f"TP={tp} x PP={pp}" + (f" x EP over DP={dp}" if expert_parallel and dp > 1 else "")
    message = (
        f"needs {fmt_gib(estimate.needed)} per GPU with {split} ({fmt_gib(estimate.weights)} of weights "
        f"+ {fmt_gib(estimate.overhead)} runtime overhead and minimum KV cache), but {gpu.label} has "
        f"{fmt_gib(gpu.bytes)} x {utilization:.2f} = {fmt_gib(estimate.usable)} usable"
    )
    provenance = f"Weights: {weights.description}; GPU from {gpu.source}"
    if weights.upper_bound:
        return unverified(
            f"{message}, but the parameter count is an upper bound (experts share attention layers); annotate "
            f"inference.lws.dev/parameters with the real count. {provenance}"
        )
    enough = _gpus_needed(weights.total_bytes, estimate.overhead, estimate.usable, shards)
    advice = f"use TP x PP >= {enough} or a larger GPU" if enough else "use a larger GPU or a quantized model"
    result.denials.append(f"{who}: {message}; {advice}. {provenance}")
    return None


def _other_accelerator(props: Mapping[str, Any]) -> str | None:
    """An accelerator resource other than nvidia.com/gpu that the group's containers request."""
    for item in manifest.containers_of(manifest.lws_pod_specs(props)):
        resource = manifest.accelerator_resource(item.container)
        if resource is not None and resource != GPU_RESOURCE:
            return resource
    return None


def _model_facts(props: Mapping[str, Any]) -> ModelFacts | str | None:
    """The inference.lws.dev/* annotations, None without them, or why they cannot be used."""
    annotations = manifest.annotations_of(props)
    if any(len(str(value)) > _MAX_ANNOTATION for key, value in annotations.items() if str(key).startswith(PREFIX)):
        return f"an {PREFIX}* annotation is longer than {_MAX_ANNOTATION} characters, no value the pack can size with"
    try:
        return read_model_annotations(annotations)
    except (OverflowError, ValueError):
        return f"the {PREFIX}* annotations hold numbers beyond any real model"


def _catalog_checkpoint(server: Server) -> Checkpoint | str | None:
    """The served model as a checkpoint of the built-in catalog (deepseek-ai/DeepSeek-R1,
    /models/Qwen3-235B-A22B-FP8): its real shape, MoE and MLA included, beats a size read from the name.
    --quantization, when given, says how the weights are stored."""
    model = server.flags.values.get("model")
    checkpoint = find_checkpoint(model) if model else None
    if checkpoint is None or not server.flags.values.get("quantization"):
        return checkpoint
    stored = storage(server.flags, model or "")
    if stored.dtype is None:
        return stored.source
    return replace(checkpoint, dtype_override=stored.dtype)


def _degrees(server: Server) -> tuple[int, int, int] | str:
    """TP, PP and DP of the server's command: 1 when the flag is absent, a reason when it is no number."""
    found = []
    for key, label in (("tensor", "tensor-parallel"), ("pipeline", "pipeline-parallel"), ("data", "data-parallel")):
        raw = server.flags.values.get(key)
        value = 1 if raw is None else server.flags.integer(key)
        if value is None or value < 1:
            why = "a variable the pack cannot resolve" if server.flags.unresolved(key) else "not a positive number"
            return f"the {label} degree of container {server.container} is {raw!r}, {why}"
        found.append(value)
    return found[0], found[1], found[2]


def _weights_from_name(server: Server) -> Weights | str:
    model = server.flags.values.get("model")
    if not model:
        return f"container {server.container} names no model (--model / --model-path)"
    count = parameter_count(model)
    if count is None:
        return (
            f"the parameter count of model {model} is not in its name; add the inference.lws.dev/* "
            "annotations (parameters, dtype, layers, attention-heads, kv-heads, head-dim)"
        )
    stored = storage(server.flags, model)
    if stored.dtype is None:
        return f"{stored.source} (model {model})"
    # weight_bytes needs only the count and dtype (no embedding split without hidden and vocab sizes).
    shape = ModelShape(count.parameters, stored.dtype, layers=0, attention_heads=0, kv_heads=0, head_dim=0)
    size = f"{count.parameters / 1e9:g}B"
    if count.upper_bound_only:
        size = f"at most {size} ({count.experts} experts)"
    return Weights(
        weight_bytes(shape),
        f"{size} parameters in {stored.label}, size from the model name {model}, {stored.label} {stored.source}",
        upper_bound=count.upper_bound_only,
    )


def _gpus_needed(total_bytes: float, overhead: float, usable: float, gpus: int) -> int | None:
    """The GPU count (doubling) at which the weights, split further, fit next to the overhead."""
    candidate = gpus
    while candidate < 1024:
        candidate *= 2
        if total_bytes / candidate + overhead <= usable:
            return candidate
    return None


def resolve_gpu(props: Mapping[str, Any], settings: Settings) -> Gpu | str:
    """The smallest GPU the group's GPU pods may land on, or why it is unknown."""
    found: list[Gpu] = []
    for pod in manifest.lws_pod_specs(props):
        if not manifest.pod_gpus(pod.spec):
            continue
        selection = manifest.gpu_selection(pod.spec)
        if selection.memory_mib is not None:
            label = (
                selection.products[0] if len(selection.products) == 1 else f"a GPU with {selection.memory_mib:.0f} MiB"
            )
            found.append(Gpu(label, selection.memory_mib * MIB, f"the {pod.role} {selection.source}"))
            continue
        products = selection.products or (settings.default_gpu,)
        source = (
            f"the {pod.role} {selection.source}"
            if selection.products
            else "the cluster default in the policy config (defaultGpu)"
        )
        for product in products:
            memory = settings.gpu_bytes(product)
            if memory is None:
                return (
                    f"GPU {product} (from {source}) has no known memory; add it to gpuMemoryMiB in the "
                    "policy config (MiB, as in the nvidia.com/gpu.memory node label)"
                )
            found.append(Gpu(product, memory, source))
    if not found:
        return f"no pod requests {GPU_RESOURCE}"
    return min(found, key=lambda gpu: gpu.bytes)
