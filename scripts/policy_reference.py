"""The README's policy reference, generated from the pack so the two cannot drift.

    python -m scripts.policy_reference           rewrite the section in README.md
    python -m scripts.policy_reference --print   print it instead

Names, levels, descriptions and config schemas come from the pulumi_policy objects of lws_guard.pack;
the example messages come from running each policy's rule function on a deliberately broken object
built here (one defect each, on a group that passes every policy). tests/test_readme.py checks that
the README holds exactly this text between its markers. It lives outside the pack's import root
(policies/), so the pack never loads it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lws_guard.autoscaling import STACK_CHECKS, STACK_RULES
from lws_guard.pack import DRAINED_POLICY, DRAINED_RULE, RESOURCE_RULES, resource_policies, stack_policies
from lws_guard.settings import Settings
from lws_guard.upgrade import StackResource, check_no_online_upgrade_drained
from packaging.version import Version
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import Policy

from config.reference import rewrite_section
from kernel.catalog import DEFAULT_LWS_VERSION
from scripts import policy_config

BEGIN = "<!-- policy-reference:begin -->"
END = "<!-- policy-reference:end -->"
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIG_DIR = ROOT / "policies" / "config"

Obj = dict[str, Any]

# ---- objects for the examples -----------------------------------------------------------------
# A group that passes every policy with the default config: Llama-3.1-405B on vLLM over Ray, one
# leader and one worker pod with 8 GPUs each (TP=8 in a pod, PP=2 across the two), the weights on a
# read-only claim, the token from a Secret. Each example breaks one thing of it.

LEADER_COMMAND = (
    "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader "
    "--ray_cluster_size=$(LWS_GROUP_SIZE); python3 -m vllm.entrypoints.openai.api_server --port 8000 "
    "--model /models/Meta-Llama-3.1-405B-Instruct --tensor-parallel-size 8 --pipeline-parallel-size 2"
)
WORKER_COMMAND = (
    "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh worker --ray_address=$(LWS_LEADER_ADDRESS)"
)
IMAGE = "vllm/vllm-openai:v0.10.0"
# The release the default policy config pins, and the next minor one (an upgrade the examples attempt).
PINNED = DEFAULT_LWS_VERSION
NEXT = f"{Version(PINNED).major}.{Version(PINNED).minor + 1}.0"
CONTROLLER_IMAGE = "registry.k8s.io/lws/lws"


def _pod(name: str, script: str, *, probe: bool) -> Obj:
    container: Obj = {
        "name": name,
        "image": IMAGE,
        "command": ["sh", "-c", script],
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}],
        "resources": {"limits": {"nvidia.com/gpu": "8", "memory": "1000Gi"}, "requests": {"cpu": "64"}},
        "volumeMounts": [
            {"name": "models", "mountPath": "/models", "readOnly": True},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    if probe:
        container["ports"] = [{"containerPort": 8000}]
        container["readinessProbe"] = {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10}
    return {
        "spec": {
            "containers": [container],
            "volumes": [
                {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
            ],
        }
    }


def group() -> Obj:
    """The LeaderWorkerSet every example starts from; it passes every policy."""
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "llama-405b", "namespace": "inference"},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": _pod("leader", LEADER_COMMAND, probe=True),
                "workerTemplate": _pod("worker", WORKER_COMMAND, probe=False),
            },
        },
    }


def controller(version: str = PINNED) -> Obj:
    """The LWS controller's Deployment running release `version` (the default config pins PINNED)."""
    container = {"name": "manager", "image": f"{CONTROLLER_IMAGE}:v{version}", "imagePullPolicy": "IfNotPresent"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "lws-controller-manager", "namespace": "lws-system"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def model_volume(reclaim: str = "Retain") -> Obj:
    """An NFS PersistentVolume holding the weights."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "models"},
        "spec": {
            "capacity": {"storage": "1024Gi"},
            "accessModes": ["ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": reclaim,
            "nfs": {"server": "10.0.0.9", "path": "/models"},
        },
    }


def good_stack() -> list[Obj]:
    """Objects that pass every policy with the default config (the baseline of the examples)."""
    return [group(), controller(), model_volume()]


def _leader(obj: Obj) -> Obj:
    container: Obj = obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    return container


def _templates(obj: Obj) -> list[Obj]:
    template = obj["spec"]["leaderWorkerTemplate"]
    return [template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]]


def _changed(change: Callable[[Obj], None]) -> Callable[[], list[Obj]]:
    def build() -> list[Obj]:
        obj = copy.deepcopy(group())
        change(obj)
        return [obj]

    return build


def _on_a10(obj: Obj) -> None:
    for spec in _templates(obj):
        spec["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-A10"}


def _unnamed_model(obj: Obj) -> None:
    leader = _leader(obj)
    leader["command"][2] = leader["command"][2].replace("Meta-Llama-3.1-405B-Instruct", "house-model")


def _no_worker_shm(obj: Obj) -> None:
    worker = _templates(obj)[1]["containers"][0]
    worker["volumeMounts"] = [m for m in worker["volumeMounts"] if m["mountPath"] != "/dev/shm"]


def _size_three(obj: Obj) -> None:
    obj["spec"]["leaderWorkerTemplate"]["size"] = 3


def _pipeline_four(obj: Obj) -> None:
    leader = _leader(obj)
    leader["command"][2] = leader["command"][2].replace("--pipeline-parallel-size 2", "--pipeline-parallel-size 4")


def _no_worker_size_limit(obj: Obj) -> None:
    del _templates(obj)[1]["volumes"][1]["emptyDir"]["sizeLimit"]


def _literal_token(obj: Obj) -> None:
    _leader(obj)["env"] = [{"name": "HF_TOKEN", "value": "hf_0123456789abcdefghijklmnopqrstuv"}]


def _latest(obj: Obj) -> None:
    _leader(obj)["image"] = "vllm/vllm-openai:latest"


def _no_probe(obj: Obj) -> None:
    del _leader(obj)["readinessProbe"]


def _writable_models(obj: Obj) -> None:
    spec = _templates(obj)[0]
    del spec["containers"][0]["volumeMounts"][0]["readOnly"]
    del spec["volumes"][0]["persistentVolumeClaim"]["readOnly"]


def autoscaler(kind: str, spec: Obj) -> Obj:
    """An HPA (autoscaling/v2) or a KEDA ScaledObject scaling `inference/llama-405b`."""
    api_version = "autoscaling/v2" if kind == "HorizontalPodAutoscaler" else "keda.sh/v1alpha1"
    target = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": "llama-405b"}
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "llama-405b", "namespace": "inference"},
            "spec": {"scaleTargetRef": target, **spec}}  # fmt: skip


def _gpu_hpa() -> list[Obj]:
    gpu = {"name": "nvidia.com/gpu", "target": {"type": "Utilization", "averageUtilization": 80}}
    return [
        autoscaler("HorizontalPodAutoscaler", {"maxReplicas": 4, "metrics": [{"type": "Resource", "resource": gpu}]})
    ]


def _sglang_queue() -> list[Obj]:
    trigger = {"type": "prometheus", "metadata": {"serverAddress": "http://prometheus-operated.monitoring.svc:9090",
               "query": "sum(sglang:num_queue_reqs)", "threshold": "8"}}  # fmt: skip
    return [group(), autoscaler("ScaledObject", {"maxReplicaCount": 4, "triggers": [trigger]})]


def _two_fixed_groups() -> list[Obj]:
    obj = group()
    obj["spec"]["replicas"] = 2
    return [obj]


@dataclass(frozen=True)
class Example:
    """A broken object for one policy: what is wrong, in words, and the objects themselves."""

    policy: str
    setup: str
    resources: Callable[[], list[Obj]]
    config: Mapping[str, Any] = field(default_factory=dict)


GROUP = "`inference/llama-405b`"
BASELINE = (
    "The examples start from objects that pass every policy, and break one thing each: the LeaderWorkerSet "
    "`inference/llama-405b` (Llama-3.1-405B on vLLM over Ray, `size: 2`, leader and worker pods with 8 GPUs, "
    "TP=8 x PP=2, a 16Gi Memory emptyDir on /dev/shm, the weights on a read-only claim, `HF_TOKEN` from a Secret, "
    "a readiness probe on the leader, image `vllm/vllm-openai:v0.10.0`), the LWS controller's Deployment at "
    f"v{PINNED} and an NFS PersistentVolume with reclaim policy Retain. Each message below is what the policy's "
    "rule reports on the broken object."
)

EXAMPLES: tuple[Example, ...] = (
    Example("gpu-memory", f"{GROUP} with both pods on NVIDIA-A10 nodes (nodeSelector)", _changed(_on_a10)),
    Example(
        "gpu-memory-unverified",
        f"{GROUP} serving `--model /models/house-model`, a name without a parameter count, and no "
        "inference.lws.dev/* annotations",
        _changed(_unnamed_model),
    ),
    Example("shared-memory", f"{GROUP} with the worker's /dev/shm mount removed", _changed(_no_worker_shm)),
    Example(
        "shared-memory-advice", f"{GROUP} with the worker's /dev/shm sizeLimit removed", _changed(_no_worker_size_limit)
    ),
    Example("parallelism", f"{GROUP} with --pipeline-parallel-size raised to 4", _changed(_pipeline_four)),
    Example("parallelism-advice", f"{GROUP} with its size raised to 3 and TP x PP left at 16", _changed(_size_three)),
    Example(
        "no-online-upgrade",
        f"the LWS controller's Deployment running registry.k8s.io/lws/lws:v{NEXT} on a cluster pinned to {PINNED}",
        lambda: [controller(NEXT)],
    ),
    Example(
        DRAINED_POLICY,
        f"a stack still holding {GROUP}, with the controller moved to v{NEXT} in a maintenance window",
        lambda: [group(), controller(NEXT)],
        {"lwsVersion": PINNED, "maintenance": True},
    ),
    Example("no-plaintext-secrets", f"{GROUP} with HF_TOKEN as a literal value", _changed(_literal_token)),
    Example("image-pinned", f"{GROUP} with the leader on vllm/vllm-openai:latest", _changed(_latest)),
    Example("leader-probe", f"{GROUP} without the leader's readiness probe", _changed(_no_probe)),
    Example(
        "model-volume-readonly", f"{GROUP} with the leader's model claim mounted writable", _changed(_writable_models)
    ),
    Example(
        "model-pv-reclaim",
        "an NFS PersistentVolume of the weights with persistentVolumeReclaimPolicy Delete",
        lambda: [model_volume("Delete")],
    ),
    Example("autoscaler-target", f"an HPA of {GROUP} on the resource nvidia.com/gpu", _gpu_hpa),
    Example("autoscaler-metric", f"a ScaledObject of {GROUP} (vLLM) on SGLang's queue gauge", _sglang_queue),
    Example("lws-autoscaling", f"{GROUP} with 2 replicas and no autoscaler", _two_fixed_groups),
)


def type_token(obj: Mapping[str, Any]) -> str:
    """kubernetes:<group/version>:<Kind>, as the Kubernetes provider types the object."""
    api_version = str(obj.get("apiVersion", ""))
    if "/" not in api_version:
        api_version = f"core/{api_version}"
    return f"kubernetes:{api_version}:{obj.get('kind')}"


def messages(policy: str, objs: Sequence[Mapping[str, Any]], config: Mapping[str, Any] | None = None) -> list[str]:
    """What the pack's rule function behind `policy` reports for these objects under that policy config."""
    settings = Settings.from_config(config or {})
    resources = [StackResource(type_token(o), o, str(o["metadata"]["name"])) for o in objs]
    if policy == DRAINED_POLICY:
        return check_no_online_upgrade_drained(resources, settings)
    if policy in STACK_CHECKS:
        return STACK_CHECKS[policy][1](resources, settings)
    [rule] = [r for r in RESOURCE_RULES if r.name == policy]
    return [m for o in objs for m in rule.check(type_token(o), o, settings, name=str(o["metadata"]["name"]))]


# ---- rendering --------------------------------------------------------------------------------


def _cell(value: str) -> str:
    return " ".join(value.split()).replace("|", "\\|")


def _schema_type(spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("type", "any"))
    extra = spec.get("additionalProperties")
    if kind == "object" and isinstance(extra, Mapping):
        kind = f"map of string to {_schema_type(extra)}"
    bounds = [f">= {spec['minimum']}"] if "minimum" in spec else []
    if "pattern" in spec:
        bounds.append(f"pattern `{spec['pattern']}`")
    return f"{kind} ({', '.join(bounds)})" if bounds else kind


def level(policy: Policy) -> str:
    """mandatory or advisory; a policy without a level of its own takes the pack's (mandatory)."""
    return str((policy.enforcement_level or EnforcementLevel.MANDATORY).value)


def _config_table(policy: Policy) -> list[str]:
    schema = policy.config_schema
    if schema is None or not schema.properties:
        return ["No config."]
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, spec in schema.properties.items():
        default = f"`{json.dumps(spec['default'])}`" if "default" in spec else ""
        rows.append(
            f"| `{key}` | {_cell(_schema_type(spec))} | {_cell(default)} | {_cell(str(spec.get('description', '')))} |"
        )
    return rows


def _config_files() -> list[str]:
    rows = [
        "| file | generated from | defaultGpu | extra gpuMemoryMiB | /dev/shm floor | lwsVersion |",
        "|---|---|---|---|---|---|",
    ]
    sources = {s.config_file.name: s.profile.relative_to(ROOT) for s in policy_config.stacks()}
    for path in sorted(CONFIG_DIR.glob("*.json")):
        config = json.loads(path.read_text())
        gpu = config.get("gpu-memory", {})
        extra = ", ".join(f"{k}: {v}" for k, v in sorted(gpu.get("gpuMemoryMiB", {}).items()))
        shm = config.get("shared-memory", {})
        floor = f"{shm.get('shmBaseGiB', '')} GiB + {shm.get('shmPerGpuGiB', '')} GiB per GPU" if shm else ""
        version = config.get("no-online-upgrade", {}).get("lwsVersion", "")
        source = f"`{sources[path.name]}`" if path.name in sources else "(no stack)"
        cells = [f"`policies/config/{path.name}`", source, gpu.get("defaultGpu", ""), extra, floor, version]
        rows.append(f"| {' | '.join(map(str, cells))} |")
    return rows


def _example(policy: str) -> list[str]:
    found = [e for e in EXAMPLES if e.policy == policy]
    if len(found) != 1:
        raise LookupError(f"policy {policy} needs exactly one example in scripts.policy_reference.EXAMPLES")
    example = found[0]
    reported = messages(policy, example.resources(), example.config)
    if not reported:
        raise AssertionError(f"the example of {policy} reports nothing: fix it in scripts.policy_reference")
    config = f"policy config `{json.dumps(dict(example.config))}`" if example.config else "the default config"
    return [f"Example: {example.setup}, with {config}:", "", "```text", *reported, "```"]


def _rule(policy: Policy) -> str:
    """What makes the policy mandatory or advice, and why (lws_guard.pack)."""
    texts = [r.rule for r in RESOURCE_RULES if r.name == policy.name] or [
        STACK_RULES.get(policy.name, DRAINED_RULE if policy.name == DRAINED_POLICY else "")
    ]
    if not texts[0]:
        raise LookupError(f"policy {policy.name} needs a rule text in lws_guard.pack.RESOURCE_RULES")
    return texts[0]


def _policy(policy: Policy) -> list[str]:
    return [
        f"### `{policy.name}` ({level(policy)})",
        "",
        " ".join(str(policy.description).split()),
        "",
        f"**Rule:** {_rule(policy)}",
        "",
        *_config_table(policy),
        "",
        *_example(policy.name),
        "",
    ]


def reference() -> str:
    policies: list[Policy] = [*resource_policies(), *stack_policies()]
    names = [p.name for p in policies]
    unused = [e.policy for e in EXAMPLES if e.policy not in names]
    if unused:
        raise LookupError(f"examples for policies the pack does not have: {unused}")
    mandatory = [f"`{p.name}`" for p in policies if level(p) == "mandatory"]
    advisory = [f"`{p.name}`" for p in policies if level(p) == "advisory"]
    lines = [
        BEGIN,
        "Generated from the pack (`python -m scripts.policy_reference` rewrites this section; "
        "a test fails when it is stale).",
        "",
        "`make policy-check STACK=dev` regenerates `policies/config/dev.json` from `Pulumi.dev.yaml` (when the "
        "stack file or the generator changed since; make compares their times), then runs "
        "`pulumi preview --stack dev --policy-pack policies --policy-pack-config policies/config/dev.json`: the "
        "program's preview, every resource through the resource policies and the whole stack through the stack "
        "policy.",
        "",
        f"* **mandatory** ({', '.join(mandatory)}): a violation fails `pulumi preview` (non-zero exit), which "
        "changes nothing. `pulumi up` with the same flags previews first and stops there too; only with "
        "`--skip-preview` would the policies run during the update, halting it at the first violation after "
        "what came before it was applied.",
        f"* **advisory** ({', '.join(advisory)}): reported in the preview, which still succeeds.",
        "",
        "The line between them: a mandatory policy denies only what would fail or lose data, with the evidence "
        "in its message; what is risky, below a recommendation or impossible to verify is advice, with the "
        "recommended value. A policy has one enforcement level, so each check with both kinds of findings is "
        "two policies (`shared-memory` and `shared-memory-advice`, `parallelism` and `parallelism-advice`, "
        "`gpu-memory` and `gpu-memory-unverified`). LeaderWorkerSets and the roles of a DisaggregatedSet "
        "(LWS 0.9+, `disaggregatedset.x-k8s.io`) are checked alike.",
        "",
        "Each stack has its policy config in `policies/config/<stack>.json`, generated from the cluster profile "
        "of its stack file (`python -m scripts.policy_config --all`; never edit it by hand): one object per policy "
        '(`{"gpu-memory": {...}, "shared-memory": {...}}`). The CLI validates each object against the '
        "policy's schema (the tables below) and fills in the defaults; a policy reads only its own object, so "
        "a key two policies share (`defaultGpu`, `lwsVersion`, ...) is set in both.",
        "",
        *_config_files(),
        "",
        BASELINE,
        "",
    ]
    for policy in policies:
        lines += _policy(policy)
    return "\n".join([*lines[:-1], END])


def rewrite(readme: Path = README) -> bool:
    """Replace the section between the markers of the README; True when it changed."""
    return rewrite_section(readme, reference())


def main(argv: Sequence[str]) -> None:
    if "--print" in argv:
        print(reference())
    else:
        print(f"{README}: {'updated' if rewrite() else 'already up to date'}")


if __name__ == "__main__":
    main(sys.argv[1:])
