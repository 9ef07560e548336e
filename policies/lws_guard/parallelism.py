"""parallelism (mandatory) and parallelism-advice (advisory): the engine's ranks and the group's GPUs.

Mandatory, because the group cannot start (kernel.rules.check_parallelism, check_coordination,
check_env_expansion, shared with the planner):
* more ranks (vLLM TP x PP x DP; SGLang --tp x --pp-size, --dp-size only without --enable-dp-attention)
  than the group's GPUs (the leader's plus each worker's, any accelerator vendor): the engine waits for
  GPUs that never come; SGLang ranks that do not split over the pods, or a pod with fewer GPUs than its
  share; --nnodes other than the group size;
* several pods and nothing that joins them: vLLM without Ray and without multi-node data-parallel
  flags, SGLang without --dist-init-addr/--nnodes (and --node-rank on workers);
* `$LWS_*` outside a shell, which Kubernetes leaves literal (only `$(LWS_*)` is expanded).
Advice: fewer ranks than GPUs (idle GPUs), uneven vLLM pods, and "cannot verify" when a degree is a
variable the pack cannot resolve or no server command is readable. Two servers in one pod are checked
each against its own GPUs (*_VISIBLE_DEVICES, else its container's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kernel.catalog import Engine
from kernel.rules import (
    Finding,
    GroupShape,
    check_coordination,
    check_env_expansion,
    check_local_ranks,
    check_parallelism,
)
from lws_guard import manifest
from lws_guard.serving import Server, container_flags, is_server, pod_servers
from lws_guard.settings import Settings

# In a shell script the shell expands these itself; they mean the same as $(LWS_GROUP_SIZE).
_SHELL_GROUP_SIZE = ("$LWS_GROUP_SIZE", "${LWS_GROUP_SIZE}")
_DEGREES = (("tensor", "tensor-parallel"), ("pipeline", "pipeline-parallel"), ("data", "data-parallel"))


@dataclass
class Verdict:
    denials: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def add(self, who: str, findings: list[Finding]) -> None:
        for finding in findings:
            target = self.advice if finding.advisory else self.denials
            message = f"{who}: {finding.message}"
            if message not in target:
                target.append(message)


def check_parallelism_policy(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    return assess(resource_type, props, name).denials


def check_parallelism_advice(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    return assess(resource_type, props, name).advice


def assess(resource_type: str, props: Mapping[str, Any], name: str = "") -> Verdict:
    verdict = Verdict()
    for view in manifest.lws_views(resource_type, props, name):
        _assess_group(view, verdict)
    return verdict


def _assess_group(view: manifest.LwsView, verdict: Verdict) -> None:
    props, who = view.props, view.who
    pods = manifest.lws_pod_specs(props)
    for item in manifest.containers_of(pods, init=True):
        verdict.add(who, check_env_expansion(item.label, manifest.command(item.container)))
    size = manifest.group_size(props)
    leader_gpus = manifest.pod_gpus(manifest.leader_spec(props))
    worker_gpus = manifest.pod_gpus(manifest.worker_spec(props))
    if not leader_gpus and not worker_gpus:
        return  # a CPU-only group: no GPUs for ranks to match
    servers = [server for pod in pods for server in pod_servers(props, pod)]
    if not servers:
        verdict.add(who, [_unverified("no container runs a vLLM or SGLang server command the pack can read")])
        return
    leader = servers[0]
    leader_pod = [s for s in servers if s.role == leader.role]
    if size == 1 and len(leader_pod) > 1:
        for server in leader_pod:
            verdict.add(who, _own_gpus(server))
        return
    shape = _shape(leader, size, leader_gpus, worker_gpus)
    if isinstance(shape, Finding):
        verdict.add(who, [shape])
    else:
        verdict.add(who, check_parallelism(shape))
    # SGLang runs the whole command on every pod: a worker must agree with the leader.
    for worker in (s for s in servers if s.role == "worker" and s.engine is Engine.SGLANG):
        worker_shape = _shape(worker, size, leader_gpus, worker_gpus)
        if isinstance(worker_shape, GroupShape):
            verdict.add(who, [_prefixed(worker, f) for f in check_parallelism(worker_shape) if _new(verdict, who, f)])
    for server in servers:
        verdict.add(who, _local_ranks(server))
    verdict.add(who, _coordination(props, pods, servers, size))


def _local_ranks(server: Server) -> list[Finding]:
    local = server.flags.integer("dp_local")
    shape = _shape(server, 1, server.gpus, server.gpus)
    if server.engine is not Engine.VLLM or not local or not server.gpus or isinstance(shape, Finding):
        return []
    ranks = local * shape.tensor_parallel * shape.pipeline_parallel
    return check_local_ranks(f"{server.container} ({server.role})", ranks, server.gpus)


def _new(verdict: Verdict, who: str, finding: Finding) -> bool:
    return f"{who}: {finding.message}" not in verdict.denials + verdict.advice


def _prefixed(server: Server, finding: Finding) -> Finding:
    return Finding(finding.rule, f"container {server.container} (worker): {finding.message}", finding.advisory)


def _unverified(reason: str) -> Finding:
    return Finding("parallelism", f"cannot verify that the engine's ranks match the group's GPUs: {reason}", True)


def _degree(server: Server, key: str, label: str) -> int | Finding:
    raw = server.flags.values.get(key)
    if raw is None:
        return 1
    value = server.flags.integer(key)
    if value is not None and value >= 1:
        return value
    why = "a variable the pack cannot resolve" if server.flags.unresolved(key) else "not a positive number"
    return _unverified(f"the {label} degree of container {server.container} is {raw!r}, {why}")


def _shape(server: Server, size: int, leader_gpus: int, worker_gpus: int) -> GroupShape | Finding:
    degrees = []
    for key, label in _DEGREES:
        degree = _degree(server, key, label)
        if isinstance(degree, Finding):
            return degree
        degrees.append(degree)
    tp, pp, dp = degrees
    nnodes = server.flags.values.get("nnodes")
    if server.flags.in_shell and nnodes in _SHELL_GROUP_SIZE:
        nnodes = "$(LWS_GROUP_SIZE)"
    if server.engine is not Engine.SGLANG:
        nnodes = None
    dp_attention = "dp_attention" in server.flags.switches
    return GroupShape(server.engine, tp, pp, size, leader_gpus, worker_gpus, nnodes, dp, dp_attention)


def _own_gpus(server: Server) -> list[Finding]:
    """One of several servers in a pod: its ranks against the GPUs it sees."""
    shape = _shape(server, 1, server.gpus, server.gpus)
    if isinstance(shape, Finding):
        return [shape]
    if not server.gpus:
        return [_unverified(f"container {server.container} runs one of several servers but requests no GPUs")]
    return [
        Finding(
            f.rule, f"server {server.container} ({server.flags.engine}, {server.gpus} GPUs): {f.message}", f.advisory
        )
        for f in check_parallelism(shape)
    ]


def _coordination(
    props: Mapping[str, Any], pods: list[manifest.PodSpec], servers: list[Server], size: int
) -> list[Finding]:
    if size <= 1:
        return []
    leader = servers[0]
    if leader.engine is Engine.SGLANG:
        missing: list[str] = []
        for server in (s for s in servers if s.engine is Engine.SGLANG):
            needed = ("dist_init", "nnodes") + (("node_rank",) if server.role != "leader" else ())
            absent = [_FLAG_NAMES[key] for key in needed if key not in server.flags.values]
            if absent:
                missing.append(f"{server.container} ({server.role}) passes no {'/'.join(absent)}")
        return check_coordination(Engine.SGLANG, size, (), missing)
    evidence: list[str] = []
    opaque: list[str] = []
    for item in manifest.containers_of(pods):
        flags = container_flags(props, item.container)
        evidence += flags.coordination
        # A GPU container that is neither a server the pack reads nor shows how it joins (a custom script,
        # a module it does not know) may well join: then the verdict is "cannot verify", not a denial.
        if manifest.gpus(item.container) and not is_server(flags) and not flags.coordination:
            opaque.append(item.label)
    if not evidence and opaque:
        return [_unverified(f"several pods, and the commands of {', '.join(opaque)} are not ones the pack reads")]
    return check_coordination(Engine.VLLM, size, evidence, ())


_FLAG_NAMES = {"dist_init": "--dist-init-addr", "nnodes": "--nnodes", "node_rank": "--node-rank"}
