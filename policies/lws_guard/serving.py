"""The serving engine of a LeaderWorkerSet, read back from its containers' commands.

kernel.commands.read_flags parses one command (vLLM or SGLang, `sh -c` scripts included); this module
finds the container that runs the server and reads the model's size and storage type from what it
serves: `--model Meta-Llama-3.1-405B-Instruct`, `--model-path /models/Qwen3-32B`, `--quantization awq`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kernel import lws_api
from kernel.catalog import BYTES_PER_PARAMETER, Dtype, Engine
from kernel.commands import ServeFlags, read_flags, read_servers
from lws_guard import manifest

# What the engines take when their command sets no fraction: vLLM --gpu-memory-utilization 0.9,
# SGLang --mem-fraction-static 0.88 (the same defaults as config.model.Serving.memory_fraction).
DEFAULT_FRACTION = {Engine.VLLM: 0.90, Engine.SGLANG: 0.88}
FRACTION_FLAG = {Engine.VLLM: "--gpu-memory-utilization", Engine.SGLANG: "--mem-fraction-static"}


@dataclass(frozen=True)
class Server:
    """A server invocation of a container, what its command says, and the GPUs it may use."""

    container: str
    role: str
    flags: ServeFlags
    gpus: int = 0
    """The GPUs this server sees: its *_VISIBLE_DEVICES count, else its container's accelerators."""

    @property
    def engine(self) -> Engine:
        assert self.flags.engine is not None
        return self.flags.engine


def flags_of(command: Sequence[str], env: Mapping[str, str] | None = None) -> ServeFlags:
    """read_flags, memoized: one LeaderWorkerSet is read by several policies, and every group of a
    stack usually repeats the same commands. (ServeFlags is never modified after parsing.)"""
    return _read(tuple(command), tuple(sorted((env or {}).items())))[0]


def servers_in(command: Sequence[str], env: Mapping[str, str] | None = None) -> list[ServeFlags]:
    """Every server invocation of one argv (memoized like flags_of)."""
    return list(_read(tuple(command), tuple(sorted((env or {}).items())))[1])


@lru_cache(maxsize=2048)
def _read(command: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> tuple[ServeFlags, tuple[ServeFlags, ...]]:
    variables = dict(env)
    return read_flags(command, variables), tuple(read_servers(command, variables))


def is_server(flags: ServeFlags) -> bool:
    """A command that starts a server: it names a model or a TP degree. (A vLLM worker only joins
    the leader's Ray cluster; its command mentions vllm but carries neither.)"""
    return flags.engine is not None and ("model" in flags.values or "tensor" in flags.values)


def injected_env(props: Mapping[str, Any]) -> dict[str, str]:
    """What LWS injects into every container that the pack can know: the group size."""
    return {lws_api.GROUP_SIZE_ENV: str(manifest.group_size(props))}


def container_flags(props: Mapping[str, Any], container: Mapping[str, Any]) -> ServeFlags:
    """What one container of a LeaderWorkerSet runs (its first server, else all its flags)."""
    return flags_of(manifest.argv(container), manifest.env_values(container, injected_env(props)))


def pod_servers(props: Mapping[str, Any], pod: manifest.PodSpec) -> list[Server]:
    """The server invocations of one pod template of a LeaderWorkerSet, in container order."""
    found = []
    for container in manifest.containers(pod.spec):
        env = manifest.env_values(container, injected_env(props))
        for flags in servers_in(manifest.argv(container), env):
            if is_server(flags):
                gpus = flags.visible_devices or manifest.gpus(container)
                found.append(Server(manifest.container_name(container), pod.role, flags, gpus))
    return found


def find_server(props: Mapping[str, Any]) -> Server | None:
    """The first server of the leader, else of the workers."""
    for pod in manifest.lws_pod_specs(props):
        servers = pod_servers(props, pod)
        if servers:
            return servers[0]
    return None


def worker_servers(props: Mapping[str, Any]) -> list[Server]:
    """Server containers of the worker template (SGLang runs the full command on every pod)."""
    if not manifest.has_leader_template(props):
        return []
    return pod_servers(props, manifest.PodSpec("worker", manifest.worker_spec(props)))


# ---- the model, from its name --------------------------------------------------------------------

# "405B", "0.6B", "135M" as a word of their own: not the "3B" of "A3B" (active parameters of an MoE)
# nor part of a version such as "3.1".
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)([BbMm])(?![A-Za-z0-9])")
# "8x7B": experts x parameters of an expert (the total is less: attention is shared).
_EXPERTS = re.compile(r"(?<![A-Za-z0-9.])(\d+)[xX](\d+(?:\.\d+)?)([BbMm])(?![A-Za-z0-9])")
_SCALE = {"b": 1e9, "m": 1e6}


@dataclass(frozen=True)
class ParameterCount:
    parameters: float
    """Total parameters; for an MoE named like 8x7B, the upper bound experts x expert size."""
    experts: int | None = None

    @property
    def upper_bound_only(self) -> bool:
        return self.experts is not None


def parameter_count(model: str) -> ParameterCount | None:
    """Parameters from a model name or path: Meta-Llama-3.1-405B-Instruct, /models/Qwen3-32B, 8x7B."""
    words = [w for w in re.split(r"[/\\]", model) if w]
    for word in reversed(words):
        experts = _EXPERTS.search(word)
        if experts:
            each = float(experts.group(2)) * _SCALE[experts.group(3).lower()]
            return ParameterCount(int(experts.group(1)) * each, int(experts.group(1)))
        sizes = [float(m.group(1)) * _SCALE[m.group(2).lower()] for m in _SIZE.finditer(word)]
        if sizes:
            return ParameterCount(max(sizes))
    return None


@dataclass(frozen=True)
class Storage:
    """How the weights are stored: a catalog dtype, or None with the reason it is unknown."""

    dtype: Dtype | None
    label: str
    source: str


_QUANTIZATION: dict[str, tuple[Dtype, str]] = {
    "mxfp4": (Dtype.MXFP4, "mxfp4"),
    "modelopt_fp4": (Dtype.NVFP4, "nvfp4"),
    "nvfp4": (Dtype.NVFP4, "nvfp4"),
    "fp8": (Dtype.FP8, "fp8"),
    "fbgemm_fp8": (Dtype.FP8, "fp8"),
    "ptpc_fp8": (Dtype.FP8, "fp8"),
    "w8a8_fp8": (Dtype.FP8, "fp8"),
    "w8a8_int8": (Dtype.FP8, "8-bit"),
    "awq": (Dtype.INT4_AWQ, "awq-int4"),
    "awq_marlin": (Dtype.INT4_AWQ, "awq-int4"),
    "gptq": (Dtype.INT4_GPTQ, "gptq-int4"),
    "gptq_marlin": (Dtype.INT4_GPTQ, "gptq-int4"),
}
_DTYPE: dict[str, tuple[Dtype, str]] = {
    "auto": (Dtype.BF16, "bf16"),
    "bfloat16": (Dtype.BF16, "bf16"),
    "bf16": (Dtype.BF16, "bf16"),
    "float16": (Dtype.FP16, "fp16"),
    "half": (Dtype.FP16, "fp16"),
    "fp16": (Dtype.FP16, "fp16"),
}
# Words of a model name that say how it is stored. 8-bit integer weights take the bytes of fp8.
_NAME_WORDS: list[tuple[str, Dtype, str]] = [
    ("mxfp4", Dtype.MXFP4, "mxfp4"),
    ("nvfp4", Dtype.NVFP4, "nvfp4"),
    ("fp4", Dtype.NVFP4, "nvfp4"),
    ("fp8", Dtype.FP8, "fp8"),
    ("int8", Dtype.FP8, "8-bit"),
    ("w8a8", Dtype.FP8, "8-bit"),
    ("w8a16", Dtype.FP8, "8-bit"),
    ("awq", Dtype.INT4_AWQ, "awq-int4"),
    ("gptq", Dtype.INT4_GPTQ, "gptq-int4"),
    ("int4", Dtype.INT4_GPTQ, "int4"),
    ("w4a16", Dtype.INT4_GPTQ, "int4"),
]


def storage(flags: ServeFlags, model: str) -> Storage:
    """--quantization, else the model name (FP8, AWQ, GPTQ, Int4, Int8, MXFP4/NVFP4/FP4, gpt-oss), else
    --dtype, else bf16."""
    quantization = (flags.values.get("quantization") or "").lower()
    if quantization:
        known = _QUANTIZATION.get(quantization)
        if known:
            return Storage(known[0], known[1], f"from --quantization {quantization}")
        return Storage(None, quantization, f"--quantization {quantization} is not a format the pack can size")
    words = set(re.split(r"[^a-z0-9]+", model.lower()))
    if "gpt-oss" in model.lower():
        # OpenAI's gpt-oss checkpoints store their MoE weights in MXFP4 (quantization_config of config.json).
        words.add("mxfp4")
    name_says = [(dtype, label) for word, dtype, label in _NAME_WORDS if word in words]
    if name_says:
        # GPTQ-Int8 names two: take the wider storage, so a size is never underestimated.
        dtype, label = max(name_says, key=lambda pair: BYTES_PER_PARAMETER[pair[0]])
        return Storage(dtype, label, "from the model name")
    dtype_flag = (flags.values.get("dtype") or "").lower()
    if dtype_flag:
        known = _DTYPE.get(dtype_flag)
        if known:
            return Storage(known[0], known[1], f"from --dtype {dtype_flag}")
        return Storage(None, dtype_flag, f"--dtype {dtype_flag} is not a storage type the pack can size")
    return Storage(Dtype.BF16, "bf16", "by default (no quantization flag or marker in the name)")
