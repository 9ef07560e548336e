"""parallelism: the engine's ranks match the group's GPUs, and LWS variables reach the commands.

* vLLM: TP x PP = group size x GPUs per pod; SGLang: --tp (x --pp-size) = group size x GPUs per pod
  and --nnodes is $(LWS_GROUP_SIZE) or the size (plan.rules.check_parallelism);
* leader and workers request the same number of GPUs (without a leaderTemplate the leader is a
  worker, so they do by construction);
* `$LWS_*` outside a shell stays literal: Kubernetes only expands `$(LWS_*)`
  (plan.rules.check_env_expansion).

Group size is spec.leaderWorkerTemplate.size (default 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lws_guard import manifest
from lws_guard.serving import Server, find_server, worker_servers
from lws_guard.settings import Settings
from plan.catalog import Engine
from plan.rules import Finding, GroupShape, check_env_expansion, check_parallelism

# In a shell script the shell expands these itself; they mean the same as $(LWS_GROUP_SIZE).
_SHELL_GROUP_SIZE = ("$LWS_GROUP_SIZE", "${LWS_GROUP_SIZE}")


def check_parallelism_policy(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    if not manifest.is_lws(resource_type, props):
        return []
    who = manifest.display("LeaderWorkerSet", props, name)
    size = manifest.group_size(props)
    leader_gpus = manifest.pod_gpus(manifest.leader_spec(props))
    worker_gpus = manifest.pod_gpus(manifest.worker_spec(props))
    findings: list[Finding] = []

    for pod in manifest.lws_pod_specs(props):
        for container in manifest.containers(pod.spec, init=True):
            label = f"{manifest.container_name(container)} ({pod.role})"
            findings += check_env_expansion(label, manifest.command(container))

    leader = find_server(props)
    if not leader_gpus and not worker_gpus:
        pass  # a CPU-only group: no GPUs for ranks to match
    elif leader is not None:
        shape = _shape(leader, size, leader_gpus, worker_gpus)
        findings += check_parallelism(shape) if shape else []
        # SGLang runs the whole command on every pod: a worker must agree with the leader.
        seen = {f.message for f in findings}
        for worker in worker_servers(props):
            shape = _shape(worker, size, leader_gpus, worker_gpus)
            if worker.engine is Engine.SGLANG and shape is not None:
                findings += [
                    Finding(f.rule, f"container {worker.container} (worker): {f.message}")
                    for f in check_parallelism(shape)
                    if f.message not in seen
                ]
    elif size > 1 and (leader_gpus or worker_gpus):
        # No engine command to read TP from: still hold leader and workers to the same GPU count.
        shape = GroupShape(Engine.VLLM, size * leader_gpus, 1, size, leader_gpus, worker_gpus)
        findings += check_parallelism(shape)
    return [f"{who}: {message}" for message in dict.fromkeys(f.message for f in findings)]


def _shape(server: Server, size: int, leader_gpus: int, worker_gpus: int) -> GroupShape | None:
    tp = 1 if "tensor" not in server.flags.values else server.flags.integer("tensor")
    pp = 1 if "pipeline" not in server.flags.values else server.flags.integer("pipeline")
    if not tp or not pp:
        # Not a number (a shell variable, say): gpu-memory-unverified reports it.
        return None
    nnodes = server.flags.values.get("nnodes")
    if server.flags.in_shell and nnodes in _SHELL_GROUP_SIZE:
        nnodes = "$(LWS_GROUP_SIZE)"
    return GroupShape(server.engine, tp, pp, size, leader_gpus, worker_gpus, nnodes)
