"""Serving commands of leader and workers, and the reverse: the flags read back from a manifest.

Both directions live here so the flag names the components write are the ones the policies read.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from kernel.catalog import Dtype, Engine
from kernel.images import parse_image
from kernel.shell import basename, kubernetes_expand, shell_expand, shell_script, simple_commands, split_prefix

# Where vLLM images ship the script that starts Ray on the leader, waits until the group has joined,
# and makes workers join the leader's Ray head.
VLLM_MULTINODE_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
SGLANG_DIST_PORT = 20000
# Port of vLLM's data-parallel coordinator on the leader (the DP master), which headless workers dial.
VLLM_DP_RPC_PORT = 13345
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/sh"}

# Engine flags used below, as the pinned releases define them:
# - vLLM v0.10.0, vllm/engine/arg_utils.py (EngineArgs.add_cli_args, ParallelConfig group):
#   --tensor-parallel-size, --pipeline-parallel-size, --data-parallel-size, --data-parallel-size-local,
#   --data-parallel-start-rank, --data-parallel-address, --data-parallel-rpc-port, --enable-expert-parallel,
#   --distributed-executor-backend; vllm/entrypoints/cli/serve.py and openai/cli_args.py: `vllm serve <model>`
#   and --headless (engine cores only, no API server: the non-leader nodes of multi-node DP).
# - SGLang v0.4.10.post2, python/sglang/srt/server_args.py (ServerArgs.add_cli_args): --tp, --pp-size, --dp-size,
#   --enable-dp-attention, --ep-size (= tp_size; --enable-ep-moe is deprecated), --dist-init-addr, --nnodes,
#   --node-rank.
# The search index holds other versions of those two files, so the spellings were cross-checked in public
# multi-node DP launchers and tests that pass them to these releases; `make check-commands` (the engines'
# own parsers) is the authority.


@dataclass(frozen=True)
class ServeSpec:
    engine: Engine
    model_path: str
    served_name: str
    port: int
    tensor_parallel: int
    pipeline_parallel: int
    group_size: int
    memory_fraction: float
    max_model_len: int
    max_num_seqs: int
    quantization: str | None
    extra_args: tuple[str, ...] = ()
    data_parallel: int = 1
    """vLLM --data-parallel-size; SGLang --dp-size (with dp_attention)."""
    data_parallel_local: int = 1
    """vLLM: DP ranks on each pod (--data-parallel-size-local)."""
    expert_parallel: bool = False
    dp_attention: bool = False

    @property
    def vllm_data_parallel(self) -> bool:
        return self.engine is Engine.VLLM and self.data_parallel > 1


def leader_command(spec: ServeSpec) -> list[str]:
    if spec.engine is Engine.SGLANG:
        return _sglang(spec, leader=True)
    if spec.vllm_data_parallel:
        return _vllm_data_parallel(spec, leader=True)
    server = shlex.join(_vllm_server(spec))
    if spec.group_size == 1:
        return _vllm_server(spec)
    start_ray = f"bash {VLLM_MULTINODE_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE)"
    return ["/bin/sh", "-c", f"{start_ray} && exec {server}"]


def worker_command(spec: ServeSpec) -> list[str]:
    if spec.engine is Engine.SGLANG:
        return _sglang(spec, leader=False)
    if spec.vllm_data_parallel:
        return _vllm_data_parallel(spec, leader=False)
    return ["/bin/sh", "-c", f"exec bash {VLLM_MULTINODE_SCRIPT} worker --ray_address=$(LWS_LEADER_ADDRESS)"]


def _vllm_server(spec: ServeSpec) -> list[str]:
    args = [
        "python3", "-m", "vllm.entrypoints.openai.api_server",
        "--host", "0.0.0.0",
        "--port", str(spec.port),
        "--model", spec.model_path,
        "--served-model-name", spec.served_name,
        *_vllm_engine_args(spec),
    ]  # fmt: skip
    if spec.group_size > 1:
        args += ["--distributed-executor-backend", "ray"]
    return args + list(spec.extra_args)


def _vllm_engine_args(spec: ServeSpec) -> list[str]:
    args = [
        "--tensor-parallel-size", str(spec.tensor_parallel),
        "--pipeline-parallel-size", str(spec.pipeline_parallel),
        "--gpu-memory-utilization", str(spec.memory_fraction),
        "--max-model-len", str(spec.max_model_len),
        "--max-num-seqs", str(spec.max_num_seqs),
    ]  # fmt: skip
    if spec.quantization:
        args += ["--quantization", spec.quantization]
    if spec.expert_parallel:
        args.append("--enable-expert-parallel")
    return args


def _vllm_data_parallel(spec: ServeSpec, *, leader: bool) -> list[str]:
    """vLLM's own multi-node data parallelism (no Ray): each pod runs its DP ranks with the mp backend.

    The leader serves the API and hosts the DP coordinator (the DP master) on its pod IP, which workers reach
    as $(LWS_LEADER_ADDRESS); every worker waits until that name resolves, then runs `--headless` engine cores
    for DP ranks LWS_WORKER_INDEX x local .. + local - 1, computed by the shell.
    """
    args = ["vllm", "serve", spec.model_path]
    if leader:
        args += ["--host", "0.0.0.0", "--port", str(spec.port)]
    else:
        args.append("--headless")
    args += ["--served-model-name", spec.served_name, *_vllm_engine_args(spec)]
    args += ["--data-parallel-size", str(spec.data_parallel)]
    if spec.group_size == 1:
        return args + list(spec.extra_args)
    args += ["--data-parallel-size-local", str(spec.data_parallel_local)]
    args += ["--data-parallel-rpc-port", str(VLLM_DP_RPC_PORT)]
    command = shlex.join(args + list(spec.extra_args))
    if leader:
        # The coordinator binds its sockets to this address: the pod's own IP, not a DNS name.
        return ["/bin/sh", "-c", f'exec {command} --data-parallel-address "$(hostname -i)"']
    # Kubernetes expands $(LWS_LEADER_ADDRESS) and leaves `$((...))` alone (no such variable) for the shell.
    wait = "until getent hosts $(LWS_LEADER_ADDRESS) >/dev/null; do echo waiting for the leader; sleep 5; done"
    rank = f"--data-parallel-start-rank $((LWS_WORKER_INDEX * {spec.data_parallel_local}))"
    return ["/bin/sh", "-c", f"{wait}; exec {command} --data-parallel-address $(LWS_LEADER_ADDRESS) {rank}"]


def _sglang(spec: ServeSpec, *, leader: bool) -> list[str]:
    args = [
        "python3", "-m", "sglang.launch_server",
        "--model-path", spec.model_path,
        "--served-model-name", spec.served_name,
        "--tp", str(spec.tensor_parallel),
        "--mem-fraction-static", str(spec.memory_fraction),
        "--context-length", str(spec.max_model_len),
        "--max-running-requests", str(spec.max_num_seqs),
    ]  # fmt: skip
    if spec.pipeline_parallel > 1:
        args += ["--pp-size", str(spec.pipeline_parallel)]
    if spec.dp_attention:
        args += ["--dp-size", str(spec.data_parallel), "--enable-dp-attention"]
    if spec.expert_parallel:
        # SGLang 0.4.10 deprecates --enable-ep-moe for --ep-size, equal to the TP size.
        args += ["--ep-size", str(spec.tensor_parallel)]
    if spec.group_size > 1:
        args += [
            "--dist-init-addr", f"$(LWS_LEADER_ADDRESS):{SGLANG_DIST_PORT}",
            "--nnodes", "$(LWS_GROUP_SIZE)",
            "--node-rank", "$(LWS_WORKER_INDEX)",
        ]  # fmt: skip
    if spec.quantization:
        args += ["--quantization", spec.quantization]
    if leader:
        args += ["--host", "0.0.0.0", "--port", str(spec.port), "--enable-metrics"]
    return args + list(spec.extra_args)


# vLLM --quantization / SGLang --quantization values for each stored dtype. MXFP4 and NVFP4 checkpoints
# declare their format in config.json (quantization_config), which both engines read: no flag.
QUANTIZATION_FLAG: dict[Dtype, str | None] = {
    Dtype.BF16: None,
    Dtype.FP16: None,
    Dtype.FP8: "fp8",
    Dtype.INT4_AWQ: "awq",
    Dtype.INT4_GPTQ: "gptq",
    Dtype.MXFP4: None,
    Dtype.NVFP4: None,
}

# Boolean switches (no value) of the engines that change how ranks are laid out.
SWITCHES: dict[Engine, dict[str, tuple[str, ...]]] = {
    Engine.VLLM: {"expert": ("--enable-expert-parallel",)},  # vLLM 0.10 has no -ep
    Engine.SGLANG: {"dp_attention": ("--enable-dp-attention",), "expert": ("--enable-ep-moe",)},
}


# ---- reading commands back -------------------------------------------------------------------
# What the policy pack reads from a container: its argv (command + args, or the image's entrypoint +
# args), shell scripts of any common shell (kernel.shell), variables from the container's env and from
# the script itself. A value that stays unresolved keeps its `$`, and callers report "cannot verify".

_FLAGS = {
    Engine.VLLM: {
        "tensor": ("--tensor-parallel-size", "--tensor_parallel_size", "-tp"),
        "pipeline": ("--pipeline-parallel-size", "--pipeline_parallel_size", "-pp"),
        "fraction": ("--gpu-memory-utilization", "--gpu_memory_utilization"),
        "context": ("--max-model-len", "--max_model_len"),
        "sequences": ("--max-num-seqs", "--max_num_seqs"),
        "model": ("--model",),
        "quantization": ("--quantization", "-q"),
        "dtype": ("--dtype",),
        "nnodes": (),
        "data": ("--data-parallel-size", "--data_parallel_size", "-dp"),
    },
    Engine.SGLANG: {
        "tensor": ("--tp", "--tp-size", "--tensor-parallel-size"),
        "pipeline": ("--pp-size", "--pp", "--pipeline-parallel-size"),
        "fraction": ("--mem-fraction-static",),
        "context": ("--context-length",),
        "sequences": ("--max-running-requests",),
        "model": ("--model-path", "--model"),
        "quantization": ("--quantization",),
        "dtype": ("--dtype",),
        "nnodes": ("--nnodes",),
        "data": ("--dp-size", "--dp", "--data-parallel-size"),
    },
}

# Flags that make ranks on several pods find each other (read only; the plan writes its own).
_COORDINATION = {
    Engine.VLLM: {
        "backend": ("--distributed-executor-backend",),
        "dp_address": ("--data-parallel-address", "-dpa"),
        "dp_local": ("--data-parallel-size-local", "-dpl"),
        "dp_start_rank": ("--data-parallel-start-rank", "-dpr"),
        "dp_rpc_port": ("--data-parallel-rpc-port", "-dpp"),
        "nnodes": ("--nnodes", "-n"),
        "node_rank": ("--node-rank", "-r"),
        "master_addr": ("--master-addr",),
        "expert_size": (),
    },
    Engine.SGLANG: {
        "dist_init": ("--dist-init-addr", "--dist-init-address"),
        "node_rank": ("--node-rank",),
        "expert_size": ("--ep-size", "--ep", "--expert-parallel-size"),
        "base_gpu": ("--base-gpu-id",),
    },
}
_VLLM_MULTINODE_SWITCHES = ("--headless",)

# Images whose entrypoint is the server, for containers that pass only `args` (by repository path).
IMAGE_ENTRYPOINTS: dict[str, Engine] = {
    "vllm/vllm-openai": Engine.VLLM,
    "vllm/vllm-tpu": Engine.VLLM,
    "rocm/vllm": Engine.VLLM,
    "lmsysorg/sglang": Engine.SGLANG,
}
_ENTRYPOINT = {
    Engine.VLLM: ("python3", "-m", "vllm.entrypoints.openai.api_server"),
    Engine.SGLANG: ("python3", "-m", "sglang.launch_server"),
}
# Environment variables that give a process a subset of the pod's accelerators.
VISIBLE_DEVICES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES")
# A number larger than this is no GPU count, token count or fraction anyone means (and would overflow
# float conversions downstream): it reads as "not a number".
_MAX_DIGITS = 15

_UNEXPANDED = re.compile(r"\$\{?LWS_[A-Z_]+\}?")
_EXPANDED = re.compile(r"\$\(LWS_[A-Z_]+\)")


@dataclass(frozen=True)
class ServeFlags:
    """What a container's command says about the engine it runs.

    values: flag values after the variables that could be resolved were (an unresolved one keeps its $);
    switches: keys of kernel.commands.SWITCHES present; coordination: evidence that the ranks of several pods
    join one another (Ray, multi-node flags); visible_devices: GPUs a *_VISIBLE_DEVICES variable leaves the
    server, None when it does not restrict them.
    """

    engine: Engine | None
    in_shell: bool
    tokens: tuple[str, ...]
    values: dict[str, str]
    switches: frozenset[str] = frozenset()
    coordination: tuple[str, ...] = ()
    visible_devices: int | None = None

    def integer(self, key: str) -> int | None:
        raw = (self.values.get(key) or "").strip()
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_DIGITS else None

    def number(self, key: str) -> float | None:
        raw = (self.values.get(key) or "").strip()
        if not raw or len(raw) > 40:
            return None
        try:
            value = float(raw)
        except ValueError:
            return None
        return value if math.isfinite(value) and abs(value) < 10**_MAX_DIGITS else None

    def unresolved(self, key: str) -> bool:
        """The flag is there but its value names a variable the pack could not resolve."""
        return "$" in (self.values.get(key) or "")


def image_entrypoint(image: str | None, args: Sequence[str]) -> tuple[str, ...] | None:
    """The server an image starts when a container gives it only these `args` (None: not one we know,
    or args that are no engine flags, e.g. an image used for something else)."""
    if not image:
        return None
    engine = IMAGE_ENTRYPOINTS.get(parse_image(image).path)
    known = (
        {name for names in (*_FLAGS[engine].values(), *_COORDINATION[engine].values()) for name in names}
        if engine
        else set()
    )
    if engine is None or not any(arg.partition("=")[0] in known for arg in args):
        return None
    if engine is Engine.VLLM and args and not args[0].startswith("-"):
        return ("vllm", "serve")
    return _ENTRYPOINT[engine]


def read_flags(command: Sequence[str], env: Mapping[str, str] | None = None) -> ServeFlags:
    """The first server a container's argv starts (as the engine would parse it), else all its flags.

    env: the container's literal env (and what LWS injects, e.g. LWS_GROUP_SIZE), for $(VAR), $VAR and
    $((...)) in the command.
    """
    servers = read_servers(command, env)
    return servers[0] if servers else _read_all(command, env or {})


def read_servers(command: Sequence[str], env: Mapping[str, str] | None = None) -> list[ServeFlags]:
    """Every server invocation of a container's argv, in order (two in a script that runs two)."""
    env = dict(env or {})
    argv = [kubernetes_expand(word, env) for word in command]
    script = shell_script(argv)
    segments = simple_commands(script) if script is not None else [argv]
    evidence = _coordination(segments)
    variables = dict(env)
    found: list[ServeFlags] = []
    for segment in segments:
        assignments, words = split_prefix(segment)
        if script is not None:
            assignments = {k: shell_expand(v, variables) for k, v in assignments.items()}
            if not words:
                variables.update(assignments)
                continue
            words = [shell_expand(word, {**variables, **assignments}) for word in words]
        engine = _engine_of(" ".join(words[:4]))
        if engine is None:
            continue
        values, switches = _values(engine, words)
        starts = any(w in ("serve", "launch_server") or w.endswith(("api_server", "launch_server")) for w in words[:4])
        if not (starts or "model" in values or "tensor" in values):
            continue
        devices = _visible_devices({**variables, **assignments})
        found.append(ServeFlags(engine, script is not None, tuple(words), values, switches, evidence, devices))
    return found


def _read_all(command: Sequence[str], env: Mapping[str, str]) -> ServeFlags:
    """No server invocation found: the flags of the whole command (e.g. a vLLM worker joining Ray)."""
    argv = [kubernetes_expand(word, env) for word in command]
    script = shell_script(argv)
    segments = simple_commands(script) if script is not None else [argv]
    tokens = [word for segment in segments for word in segment]
    engine = _engine_of(" ".join(argv))
    values, switches = _values(engine, tokens) if engine is not None else ({}, frozenset())
    devices = _visible_devices(env)
    return ServeFlags(engine, script is not None, tuple(tokens), values, switches, _coordination(segments), devices)


def _values(engine: Engine, words: Sequence[str]) -> tuple[dict[str, str], frozenset[str]]:
    values: dict[str, str] = {}
    for table in (_FLAGS[engine], _COORDINATION[engine]):
        for key, names in table.items():
            found = _flag_value(words, names)
            if found is not None and key not in values:
                values[key] = found
    if engine is Engine.VLLM and "model" not in values:
        positional = _vllm_serve_model(words)
        if positional:
            values["model"] = positional
    switch_names = cast(Mapping[str, Sequence[str]], SWITCHES[engine])
    switches = frozenset(key for key, names in switch_names.items() if any(w.partition("=")[0] in names for w in words))
    expert_size = values.get("expert_size", "")
    if expert_size.isdigit() and int(expert_size) > 1:
        switches |= {"expert"}  # SGLang's --ep-size N: expert parallelism without its old switch
    return values, switches


def _coordination(segments: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Evidence in a command that its ranks join those of other pods: Ray, or multi-node flags."""
    evidence: list[str] = []
    for segment in segments:
        _, words = split_prefix(segment)
        text = " ".join(words)
        if words and basename(words[0]) == "ray" and "start" in words[1:3]:
            evidence.append("ray start")
        if "multi-node-serving.sh" in text or "ray_address" in text or "ray_cluster_size" in text:
            evidence.append("the vLLM multi-node (Ray) script")
        for word in words:
            flag = word.partition("=")[0]
            if flag in _VLLM_MULTINODE_SWITCHES or any(
                flag in names
                for table in _COORDINATION.values()
                for key, names in table.items()
                if key not in ("backend", "expert_size", "base_gpu")
            ):
                evidence.append(flag)
        backend = _flag_value(words, ("--distributed-executor-backend",))
        if backend == "ray":
            evidence.append("--distributed-executor-backend ray")
        if "ray.init" in text or "RAY_ADDRESS" in text:
            evidence.append("Ray")
    return tuple(dict.fromkeys(evidence))


def _visible_devices(variables: Mapping[str, str]) -> int | None:
    for name in VISIBLE_DEVICES:
        raw = variables.get(name)
        if raw is not None and "$" not in raw:
            devices = [d for d in raw.split(",") if d.strip()]
            return len(devices) if devices and devices != ["all"] else None
    return None


def unexpanded_lws_references(command: Sequence[str]) -> list[str]:
    """`$LWS_X` written where no shell runs: Kubernetes expands only `$(LWS_X)`, so it stays literal."""
    if shell_script(command) is not None:
        return []
    return sorted({m.group(0) for arg in command for m in _UNEXPANDED.finditer(_EXPANDED.sub("", arg))})


def _engine_of(text: str) -> Engine | None:
    if "sglang" in text:
        return Engine.SGLANG
    if "vllm" in text:
        return Engine.VLLM
    return None


def _flag_value(tokens: Sequence[str], names: Sequence[str]) -> str | None:
    """The last value given to any spelling of a flag (`--x=v` or `--x v`), as argparse keeps it."""
    value = None
    for i, token in enumerate(tokens):
        flag, eq, inline = token.partition("=")
        if flag in names:
            value = inline if eq else (tokens[i + 1] if i + 1 < len(tokens) else None)
    return value


def _vllm_serve_model(tokens: Sequence[str]) -> str | None:
    for i, token in enumerate(tokens[:-2]):
        if token.endswith("vllm") and tokens[i + 1] == "serve" and not tokens[i + 2].startswith("-"):
            return tokens[i + 2]
    return None


_PLANNED = {
    Engine.VLLM: ("--port", "--host", "--served-model-name", "--max-num-seqs", "--distributed-executor-backend",
                  "--data-parallel-size-local", "--data-parallel-start-rank", "--data-parallel-address",
                  "--data-parallel-rpc-port", "--headless"),
    Engine.SGLANG: ("--port", "--host", "--served-model-name", "--max-running-requests", "--dist-init-addr",
                    "--node-rank"),
}  # fmt: skip


def planned_flags_in(engine: Engine, args: Sequence[str]) -> list[str]:
    """Flags in `args` that the plan sets itself: repeating them would override the sized numbers."""
    planned = {name for names in _FLAGS[engine].values() for name in names} | set(_PLANNED[engine])
    planned |= {name for names in SWITCHES[engine].values() for name in names}
    return sorted({arg.partition("=")[0] for arg in args if arg.partition("=")[0] in planned})
