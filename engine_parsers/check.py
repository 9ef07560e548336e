"""A stack's generated commands, parsed by the engines' own parsers for the images' releases.

Every pod of a group runs its command after Kubernetes has put the LWS environment in it; the leader's and
each worker's command is expanded with that pod's `LWS_*` values, split as the container's shell splits it,
and every engine invocation in it is parsed. The values the engine then reads must be the plan's.
`python -m engine_parsers.check <stack>` is `make check-commands STACK=<stack>`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from config.load import ConfigError, parse
from config.model import Serving, StackConfig
from engine_parsers.client import EngineEnvironmentError, EngineParsers, Parsed, pinned_releases, release_name
from engine_parsers.invocation import Invocation, invocations, release_of
from kernel.catalog import Engine
from kernel.commands import SGLANG_DIST_PORT
from plan.group import GroupPlan, PlanError, plan_stack

ROOT = Path(__file__).resolve().parents[1]
RAY_PORT = 6379  # multi-node-serving.sh's default, which our commands keep

# What each engine calls the numbers the plan sets (its argparse `dest`), by the keys of kernel.commands._FLAGS.
ENGINE_FIELDS = {
    Engine.VLLM: {
        "tensor": "tensor_parallel_size",
        "pipeline": "pipeline_parallel_size",
        "data": "data_parallel_size",
        "context": "max_model_len",
        "fraction": "gpu_memory_utilization",
        "sequences": "max_num_seqs",
        "model": "model",
        "quantization": "quantization",
        "dtype": "dtype",
        "port": "port",
    },
    Engine.SGLANG: {
        "tensor": "tp_size",
        "pipeline": "pp_size",
        "data": "dp_size",
        "context": "context_length",
        "fraction": "mem_fraction_static",
        "sequences": "max_running_requests",
        "model": "model_path",
        "quantization": "quantization",
        "dtype": "dtype",
        "nnodes": "nnodes",
        "node_rank": "node_rank",
        "dist_init_addr": "dist_init_addr",
        "port": "port",
    },
}
SWITCH_FIELDS = {
    Engine.VLLM: {"expert": "enable_expert_parallel"},
    Engine.SGLANG: {"dp_attention": "enable_dp_attention", "expert": "enable_ep_moe"},
}


@dataclass(frozen=True)
class Pod:
    """One pod of a group: its role, the LWS environment Kubernetes expands its command with, the command."""

    group: GroupPlan
    index: int
    env: Mapping[str, str]
    command: tuple[str, ...]

    @property
    def role(self) -> str:
        return "leader" if self.index == 0 else f"worker {self.index}"


@dataclass(frozen=True)
class Checked:
    pod: Pod
    invocation: Invocation
    release: str
    parsed: Parsed


def leader_address(group: GroupPlan, namespace: str) -> str:
    """What LWS puts in LWS_LEADER_ADDRESS: the first group's leader pod behind the LWS's headless Service."""
    return f"{group.name}-0.{group.name}.{namespace}"


def pods(group: GroupPlan, namespace: str) -> list[Pod]:
    env = {"LWS_LEADER_ADDRESS": leader_address(group, namespace), "LWS_GROUP_SIZE": str(group.group_size)}
    return [
        Pod(group, index, {**env, "LWS_WORKER_INDEX": str(index)}, group.leader_command if index == 0 else
            group.worker_command)
        for index in range(group.group_size)
    ]  # fmt: skip


def planned_data_parallel(group: GroupPlan) -> int:
    """DP of the group (1 until the plan has a data-parallel field)."""
    return int(getattr(group, "data_parallel", None) or getattr(group.parallelism, "data", None) or 1)


def expected_values(pod: Pod, serving: Serving, namespace: str) -> dict[str, Any]:
    """The values, by the engine's own names, that the engine must read from this pod's command."""
    group = pod.group
    planned: dict[str, Any] = {
        "tensor": group.parallelism.tensor,
        "pipeline": group.parallelism.pipeline,
        "data": planned_data_parallel(group),
        "context": group.max_model_len,
        "fraction": serving.memory_fraction,
        "sequences": serving.max_num_seqs,
        "model": group.model_path,
    }
    if pod.index == 0:
        planned["port"] = group.port
    if group.engine is Engine.SGLANG:
        planned["nnodes"] = group.group_size
        planned["node_rank"] = pod.index
        if group.group_size > 1:
            planned["dist_init_addr"] = f"{leader_address(group, namespace)}:{SGLANG_DIST_PORT}"
    fields = ENGINE_FIELDS[group.engine]
    return {fields[key]: value for key, value in planned.items()}


def ray_script_settings(entrypoint: str, args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """multi-node-serving.sh's own options, and the arguments it passes on to `ray start`.

    As the script reads them (vllm-project/vllm examples/online_serving/multi-node-serving.sh at 2584e94):
    `--ray_port=`, `--ray_init_timeout=`, and `--ray_cluster_size=` (leader) or `--ray_address=` (worker),
    only in the `--name=value` form; every other argument goes to `ray start` unchanged.
    """
    own = {"--ray_port", "--ray_init_timeout", "--ray_cluster_size" if entrypoint == "leader" else "--ray_address"}
    settings: dict[str, str] = {}
    forwarded: list[str] = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq and name in own:
            settings[name.removeprefix("--")] = value
        else:
            forwarded.append(arg)
    return settings, forwarded


def ray_start_argv(entrypoint: str, settings: Mapping[str, str], forwarded: Sequence[str]) -> list[str]:
    port = settings.get("ray_port", str(RAY_PORT))
    if entrypoint == "leader":
        return ["--head", f"--port={port}", *forwarded]
    return [f"--address={settings.get('ray_address', '')}:{port}", "--block", *forwarded]


def engine_release(group: GroupPlan) -> str:
    """`<engine>-<release>` of the group's image; ValueError naming the image when tools/engines lacks it."""
    release = release_of(group.image)
    if release is None:
        raise ValueError(
            f"cannot tell the {group.engine.value} release of image {group.image} (no version tag); "
            "tag the image with its engine release"
        )
    name = release_name(group.engine.value, release)
    if name not in pinned_releases():
        raise ValueError(
            f"image {group.image} runs {group.engine.value} {release}, and tools/engines pins no parser "
            f"environment for it (pinned: {', '.join(pinned_releases())}); add tools/engines/{name}.in and run "
            f"`scripts/engines.sh pin {name}` (README, Engine parser checks)"
        )
    return name


def check_pod(pod: Pod, parsers: EngineParsers) -> list[Checked]:
    """Every engine invocation in the pod's command, parsed by the parser of the image's release."""
    name = engine_release(pod.group)
    checked = []
    for invocation in invocations(pod.command, pod.env):
        if invocation.program == "ray-script":
            settings, forwarded = ray_script_settings(invocation.entrypoint, invocation.args)
            parsed = parsers.get(name).parse("ray_start", ray_start_argv(invocation.entrypoint, settings, forwarded))
            parsed = Parsed(parsed.accepted, {**parsed.values, **settings}, parsed.error)
        else:
            parsed = parsers.get(name).parse(invocation.entrypoint, invocation.args)
        checked.append(Checked(pod, invocation, name, parsed))
    return checked


def problems_of(pod: Pod, serving: Serving, namespace: str, checked: Sequence[Checked]) -> list[str]:
    """What would crash-loop or mis-size the pod: a refused command, or a number read differently."""
    group, problems = pod.group, []
    # vLLM's workers only join the leader's Ray cluster; the leader starts it first when the group has workers.
    # With data parallelism there is no Ray: every pod runs `vllm serve` (the workers --headless).
    ray = group.engine is Engine.VLLM and group.group_size > 1 and group.parallelism.data == 1
    wanted = {group.engine.value: 1 if pod.index == 0 or not ray else 0, "ray-script": 1 if ray else 0}
    for program, count in wanted.items():
        runs = sum(c.invocation.program == program for c in checked)
        if runs != count:
            problems.append(f"runs {program} {runs} times, not {count}: {list(pod.command)}")
    for item in checked:
        what = f"{item.release} ({item.invocation.program} {item.invocation.entrypoint})"
        if not item.parsed.accepted:
            problems.append(f"{what} refuses the command: {item.parsed.error}")
        elif item.invocation.program == "ray-script":
            script: dict[str, str] = {"ray_cluster_size": str(group.group_size)} if pod.index == 0 else {
                "ray_address": pod.env["LWS_LEADER_ADDRESS"]}  # fmt: skip
            for key, value in script.items():
                if item.parsed.values.get(key) != value:
                    problems.append(f"{what}: {key} is {item.parsed.values.get(key)!r}, the plan's is {value!r}")
        else:
            for key, value in expected_values(pod, serving, namespace).items():
                if item.parsed.values.get(key) != value:
                    problems.append(f"{what} reads {key}={item.parsed.values.get(key)!r}, the plan's is {value!r}")
    return problems


def check_stack(config: StackConfig, parsers: EngineParsers) -> list[str]:
    """Every problem of every pod's command, each naming the model's config key and the pod."""
    plan = plan_stack(config)
    servings = {deployment.name: (index, deployment.serving) for index, deployment in enumerate(config.models)}
    namespace = config.cluster.namespace
    problems = []
    for group in plan.groups:
        index, serving = servings[group.name]
        where = f"models[{index}] ({group.name})"
        try:
            engine_release(group)
        except ValueError as error:
            problems.append(f"{where}.serving.image: {error}")
            continue
        for pod in pods(group, namespace):
            found = problems_of(pod, serving, namespace, check_pod(pod, parsers))
            problems += [f"{where} {pod.role}: {problem}" for problem in found]
    return problems


def stack_file(stack: str) -> Path:
    for path in (ROOT / f"Pulumi.{stack}.yaml", ROOT / "examples" / f"Pulumi.{stack}.yaml"):
        if path.exists():
            return path
    raise FileNotFoundError(f"no Pulumi.{stack}.yaml here or in examples/")


def load_stack(path: Path) -> StackConfig:
    config = yaml.safe_load(path.read_text())["config"]
    return parse({key.split(":", 1)[1]: v for key, v in config.items() if key.startswith("lws-inference:")})


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m engine_parsers.check <stack or Pulumi.<stack>.yaml>", file=sys.stderr)
        return 2
    parsers = EngineParsers()
    try:
        path = Path(argv[0]) if argv[0].endswith(".yaml") else stack_file(argv[0])
        problems = check_stack(load_stack(path), parsers)
    except (FileNotFoundError, ConfigError, PlanError, EngineEnvironmentError) as error:
        print(f"check-commands: {error}", file=sys.stderr)
        return 1
    finally:
        parsers.close()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check-commands: {path.name}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-commands: {path.name}: every command is accepted by its engine's parser")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
