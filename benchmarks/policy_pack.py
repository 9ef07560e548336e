"""How long the policy pack takes per resource, and for a stack of 100 LeaderWorkerSets.

Run: python benchmarks/policy_pack.py. Prints figures only (machines differ; nothing is asserted):
* every resource check over one resource of each kind: a LeaderWorkerSet rendered by plan.manifests
  (model shape in annotations), a hand-written one (size from the model name), the LWS controller's
  Deployment and an OSS PersistentVolume; directly, and through the pulumi_policy wrappers with
  proxied props as the engine calls them;
* a stack of 100 LeaderWorkerSets plus the controller: all resource checks over every resource, and
  the no-online-upgrade-drained stack check once;
* when the Pulumi CLI of tools/build.sh is in .tools/bin: the real `pulumi policy analyze --file` on a state
  file of that stack and on an empty one (the CLI, plugin and pack start-up), wall-clock, with
  policies/config/ack.json (the L20 cluster the LeaderWorkerSets are planned for).
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "policies")]

from lws_guard.pack import RESOURCE_RULES, resource_policies  # noqa: E402
from lws_guard.settings import Settings  # noqa: E402
from lws_guard.upgrade import StackResource, check_no_online_upgrade_drained  # noqa: E402
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs  # noqa: E402
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402

from config.load import parse  # noqa: E402
from harness.scratch import offline_env, state_file  # noqa: E402
from plan.group import plan_stack  # noqa: E402
from plan.manifests import OssVolume, Placement, leader_worker_set, model_volume  # noqa: E402

LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
Obj = dict[str, Any]
BIN = ROOT / ".tools" / "bin"

# A Qwen3-32B group over two L20 pods, as a user would configure it.
STACK_CONFIG: Obj = {
    "cluster": {
        "name": "bench",
        "kubernetesVersion": "1.31",
        "lws": {"version": "0.7.0"},
        "gpu": {"product": "NVIDIA-L20", "perNode": 1},
        "storage": {"nfs": {"server": "10.0.0.9", "path": "/models"}},
    },
    "models": [
        {
            "name": "qwen3-32b",
            "model": {
                "source": {"path": "Qwen3-32B"},
                "parametersBillion": 32.76,
                "layers": 64,
                "attentionHeads": 64,
                "kvHeads": 8,
                "headDim": 128,
                "hiddenSize": 5120,
                "vocabSize": 151936,
                "contextLength": 40960,
            },
            "serving": {"engine": "vllm", "image": "vllm/vllm-openai:v0.10.0", "tensorParallel": 2, "gpusPerPod": 1},
        }
    ],
}


def floats(value: Any) -> Any:
    """Numbers as the engine sends them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats(v) for v in value]
    return value


def rendered_lws() -> Obj:
    [group] = plan_stack(parse(STACK_CONFIG)).groups
    placement = Placement(namespace="inference", claim_name="models", mount_path="/models", hf_token_secret="hf")
    obj: Obj = floats(leader_worker_set(group, placement))
    return obj


def hand_written_lws() -> Obj:
    """The rendered one without our annotations and with a shell command: the name-based path."""
    obj = copy.deepcopy(rendered_lws())
    obj["metadata"]["annotations"] = {}
    template = obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    template["command"] = [
        "sh",
        "-c",
        "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader "
        "--ray_cluster_size=$(LWS_GROUP_SIZE); python3 -m vllm.entrypoints.openai.api_server "
        "--port 8000 --model /models/Qwen3-32B --tensor-parallel-size 2",
    ]
    return obj


def controller() -> Obj:
    labels = {"helm.sh/chart": "lws-0.7.0", "app.kubernetes.io/name": "lws", "app.kubernetes.io/version": "v0.7.0"}
    container = {"name": "manager", "image": "registry.k8s.io/lws/lws:v0.7.0", "imagePullPolicy": "IfNotPresent"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "lws-controller-manager", "namespace": "lws-system", "labels": labels},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def volume() -> Obj:
    source = OssVolume("models", "oss-cn-hangzhou-internal.aliyuncs.com", "/", "-o allow_other", "oss", "inference")
    return {"apiVersion": "v1", "kind": "PersistentVolume", **model_volume("models", 1024, source)}


def best_of(run: Callable[[], object], repeat: int, number: int) -> float:
    """Seconds per call: the median of `repeat` timings of `number` calls."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            run()
        timings.append((time.perf_counter() - start) / number)
    return statistics.median(timings)


def all_checks(resource_type: str, obj: Mapping[str, Any], settings: Settings) -> int:
    return sum(len(rule.check(resource_type, obj, settings)) for rule in RESOURCE_RULES)


_OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
POLICIES = resource_policies()


def through_sdk(resource_type: str, obj: Obj) -> int:
    """As the engine does it: a fresh proxy of the props for each policy, then validate."""
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    for policy in POLICIES:
        args = ResourceValidationArgs(
            resource_type, unknown_checking_proxy(obj), "urn:x", "x", _OPTS, None, {"defaultGpu": "NVIDIA-L20"}, {}
        )
        policy.validate(args, report)
    return len(reported)


def main() -> None:
    settings = Settings.from_config({"defaultGpu": "NVIDIA-L20", "lwsVersion": "0.7.0"})
    resources = {
        "LeaderWorkerSet (rendered, annotated)": (LWS, rendered_lws()),
        "LeaderWorkerSet (hand-written, name-based)": (LWS, hand_written_lws()),
        "Deployment (LWS controller)": ("kubernetes:apps/v1:Deployment", controller()),
        "PersistentVolume (OSS)": ("kubernetes:core/v1:PersistentVolume", volume()),
    }
    print(f"policy pack: {len(RESOURCE_RULES)} resource checks + 1 stack check")
    print("\nper resource, all resource checks (median of 5 x 200 calls)")
    print(f"  {'resource':45} {'direct':>10} {'via SDK':>10} {'messages':>9}")
    for label, (resource_type, obj) in resources.items():
        direct = best_of(partial(all_checks, resource_type, obj, settings), 5, 200)
        sdk = best_of(partial(through_sdk, resource_type, obj), 5, 200)
        messages = all_checks(resource_type, obj, settings)
        print(f"  {label:45} {direct * 1e6:8.0f} us {sdk * 1e6:8.0f} us {messages:9d}")

    lws = rendered_lws()
    print("\nper check on the rendered LeaderWorkerSet (median of 5 x 500 calls)")
    for rule in RESOURCE_RULES:
        seconds = best_of(partial(rule.check, LWS, lws, settings), 5, 500)
        print(f"  {rule.name:28} {seconds * 1e6:8.1f} us")

    stack: list[StackResource] = [StackResource("kubernetes:apps/v1:Deployment", controller(), "lws")]
    for index in range(100):
        obj = copy.deepcopy(lws)
        obj["metadata"]["name"] = f"group-{index:03d}"
        stack.append(StackResource(LWS, obj, obj["metadata"]["name"]))

    def resource_pass() -> int:
        return sum(all_checks(r.resource_type, r.props, settings) for r in stack)

    whole = best_of(resource_pass, 5, 3)
    stack_check = best_of(lambda: check_no_online_upgrade_drained(stack, settings), 5, 20)
    window = Settings.from_config({"lwsVersion": "0.6.1", "maintenance": True})
    stack_window = best_of(lambda: check_no_online_upgrade_drained(stack, window), 5, 20)
    print(f"\nstack of 100 LeaderWorkerSets + the controller ({len(stack)} resources)")
    print(f"  all resource checks, every resource: {whole * 1e3:8.1f} ms ({whole / len(stack) * 1e6:.0f} us/resource)")
    print(f"  stack check (no window):             {stack_check * 1e6:8.1f} us")
    print(f"  stack check (maintenance window):    {stack_window * 1e6:8.1f} us (reads every resource)")

    cli(stack)


def analyze(work: Path, state: Path) -> tuple[float, int, list[Obj]]:
    """Wall-clock seconds, exit code and policy events of one `pulumi policy analyze` run."""
    env = offline_env(work / "home")
    command = [
        "pulumi", "policy", "analyze", "--file", str(state), "--policy-pack", str(ROOT / "policies"),
        "--policy-pack-config", str(ROOT / "policies" / "config" / "ack.json"),
        "--json", "--non-interactive", "--color", "never",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - start
    events = [json.loads(line)["policyEvent"] for line in result.stdout.splitlines() if '"policyEvent"' in line]
    if result.returncode != 0 and not events:
        raise RuntimeError(f"pulumi policy analyze failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return seconds, result.returncode, events


def cli(stack: list[StackResource], repeat: int = 3) -> None:
    if not (BIN / "pulumi").exists() or not (BIN / "pulumi-language-python").exists():
        print("\npulumi policy analyze: skipped (no Pulumi CLI in .tools/bin; run `make setup`)")
        return
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        work = Path(tmp)
        empty = state_file(work / "empty.json", [])
        full = state_file(work / "stack.json", [(r.resource_type, dict(r.props)) for r in stack])
        analyze(work, empty)  # warm-up: the Python language host and pack imports, OS caches
        print(f"\npulumi policy analyze --file <state> (real CLI, wall-clock, median of {repeat})")
        medians: list[float] = []
        for label, state in (("empty state (start-up)", empty), (f"{len(stack)} resources", full)):
            runs = [analyze(work, state) for _ in range(repeat)]
            medians.append(statistics.median(run[0] for run in runs))
            code, events = runs[0][1], runs[0][2]
            mandatory = sum(1 for e in events if e.get("enforcementLevel") == "mandatory")
            print(f"  {label:28} {medians[-1]:6.2f} s   exit {code}, {len(events)} events ({mandatory} mandatory)")
        policy_time = medians[1] - medians[0]
        print(f"  {'difference':28} {policy_time:6.2f} s   ({policy_time / len(stack) * 1e3:.1f} ms/resource)")


if __name__ == "__main__":
    main()
