"""Checks of the whole stack that stop edits which would lose data or access, before anything is applied.

Each returns plan Problems naming the config key: names that collide with what the LWS controller creates for
another model, the inference namespace shared with the controller's, pipeline stages without layers, and
credentials written into engine arguments (which end in plaintext in the command, the state and rendered YAML).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from config.model import LwsMode, StackConfig
from kernel.catalog import LwsFeature, lws_supports

# ---- names ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DerivedName:
    """A name the stack or the LWS controller gives an object of a model `<name>`."""

    suffix: str
    """Regex after `<name>`."""
    objects: str


# What exists for a model <name> (LWS: one leader StatefulSet <name> whose pods are the group leaders
# <name>-<group>, a worker StatefulSet <name>-<group> per group with pods <name>-<group>-<worker>, the
# headless Service <name>; this stack: the leader Service <name>-leader, NetworkPolicy and HPA <name>).
DERIVED_NAMES = (
    DerivedName("-leader", "the leader Service {name}-leader"),
    DerivedName(r"-\d+", "the worker StatefulSet and leader pod {name}-<group index>"),
    DerivedName(r"-\d+-\d+", "the worker pods {name}-<group>-<worker index>"),
)


def check_names(config: StackConfig) -> list[tuple[str, str]]:
    """(key, message) for every model whose own objects take a name another model's objects have."""
    found = []
    names = [m.name for m in config.models]
    for index, name in enumerate(names):
        for other_index, other in enumerate(names):
            if other_index == index:
                continue
            for derived in DERIVED_NAMES:
                if re.fullmatch(re.escape(other) + derived.suffix, name):
                    objects = derived.objects.format(name=other)
                    found.append(
                        (
                            f"models[{index}].name",
                            f"`{name}` collides with models[{other_index}].name `{other}`: {objects} of "
                            f"`{other}` has the name of this model's LeaderWorkerSet objects (headless Service, "
                            f"StatefulSet, pods), so one model would take over the other's. Rename one of them",
                        )
                    )
    return found


# ---- namespaces ----------------------------------------------------------------------------------


def check_namespaces(config: StackConfig) -> list[tuple[str, str]]:
    cluster = config.cluster
    if cluster.lws.mode is not LwsMode.INSTALL or cluster.namespace != cluster.lws.namespace:
        return []
    return [
        (
            "cluster.namespace",
            f"`{cluster.namespace}` is also cluster.lws.namespace: the controller's Namespace is deleted with the "
            "controller (changing cluster.lws.mode, pulumi destroy), and deleting a namespace deletes the model "
            "claim, the Secrets and the groups in it. Use another namespace for the groups (default: inference)",
        )
    ]


# ---- model shape ---------------------------------------------------------------------------------


def check_pipeline_stages(config: StackConfig) -> list[tuple[str, str]]:
    found = []
    for index, deployment in enumerate(config.models):
        stages, layers = deployment.serving.pipeline_parallel, deployment.model.layers
        if stages is not None and stages > layers:
            found.append(
                (
                    f"models[{index}].serving.pipelineParallel",
                    f"PP={stages} exceeds the model's {layers} layers; every pipeline stage needs at least one "
                    f"layer: use pipelineParallel <= {layers}",
                )
            )
    return found


# ---- credentials in arguments -------------------------------------------------------------------

CREDENTIAL_WORDS = {"token", "secret", "password", "passwd", "credential", "credentials", "apikey"}
CREDENTIAL_PAIRS = {("api", "key"), ("access", "key"), ("auth", "key")}
CREDENTIAL_VALUE = re.compile(r"^(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,}|LTAI[A-Za-z0-9]{8,})")
"""OpenAI-style keys, Hugging Face tokens, Alibaba Cloud AccessKey ids."""


def credential_in(arg: str) -> str | None:
    """Why an engine argument looks like a credential; None when it does not. Never returns the value."""
    flag, _, value = arg.partition("=")
    words = re.split(r"[-_]", flag.lstrip("-").lower()) if flag.startswith("-") else []
    if CREDENTIAL_WORDS & set(words) or CREDENTIAL_PAIRS & set(itertools.pairwise(words)):
        return f"flag {flag}"
    if CREDENTIAL_VALUE.match(value or arg):
        return f"a value starting {(value or arg)[:3]}..."
    return None


def check_extra_args(config: StackConfig) -> list[tuple[str, str]]:
    found = []
    for index, deployment in enumerate(config.models):
        for position, arg in enumerate(deployment.serving.extra_args):
            reason = credential_in(arg)
            if reason:
                found.append(
                    (
                        f"models[{index}].serving.extraArgs[{position}]",
                        f"looks like a credential ({reason}): engine arguments are stored in plaintext in the "
                        "command, the stack state and rendered YAML. Set the server API key with `pulumi config "
                        "set --secret apiKey` (it reaches the pods from a Secret) and the Hugging Face token with "
                        "`pulumi config set --secret hfToken`",
                    )
                )
    return found


def check_stack(config: StackConfig) -> list[tuple[str, str]]:
    """Every safety problem of the stack, as (config key, message)."""
    return [
        *check_namespaces(config),
        *check_names(config),
        *check_pipeline_stages(config),
        *check_extra_args(config),
    ]


# ---- group size on LWS < 0.7 ---------------------------------------------------------------------

SIZE_PATH = "spec.leaderWorkerTemplate.size"


def size_is_immutable(lws_version: Sequence[int]) -> bool:
    """Before 0.7 the LWS webhook rejects any change of leaderWorkerTemplate.size."""
    return not lws_supports(tuple(lws_version), LwsFeature.MUTABLE_SIZE)


def size_change_notice(where: str, name: str, size: int, lws_version: str, startup_seconds: int) -> str:
    return (
        f"{where}: LWS {lws_version} cannot change a group's size in place, so a change of the group size (now "
        f"{size} pods; from tensorParallel, pipelineParallel, gpusPerPod) replaces LeaderWorkerSet {name}: every "
        f"group of it is deleted first, then recreated, and the model serves nothing until the new groups are "
        f"Available (up to {startup_seconds} s of startup budget, plus image pulls and scheduling)"
    )
