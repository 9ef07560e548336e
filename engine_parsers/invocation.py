"""A container's command as the kubelet and then the container's shell run it, and the engine invocations in it.

Kubernetes expands `$(VAR)` in command and args from the container's environment (`$$` escapes a `$`, an
undefined reference stays as written); a `sh -c` script is then split by the shell into simple commands
joined by `&&`, `||`, `;` or `|`, each of which may start with `exec` or variable assignments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from kernel import shell
from kernel.catalog import Engine
from kernel.commands import VLLM_MULTINODE_SCRIPT

_PYTHON = re.compile(r"python(3(\.\d+)?)?")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
RAY_SCRIPT = os.path.basename(VLLM_MULTINODE_SCRIPT)

# Entry points: how each engine's server is started, and which parser the harness builds for it.
MODULES = {
    "vllm.entrypoints.openai.api_server": (Engine.VLLM, "api_server"),
    "sglang.launch_server": (Engine.SGLANG, "launch_server"),
}


@dataclass(frozen=True)
class Invocation:
    """One program the container runs: an engine server, or vLLM's script that starts Ray."""

    program: str
    """`vllm`, `sglang`, or `ray-script` (examples/online_serving/multi-node-serving.sh)."""
    entrypoint: str
    """`api_server` or `serve` (vLLM), `launch_server` (SGLang), `leader` or `worker` (the Ray script)."""
    args: tuple[str, ...]


def expand_kubernetes(arg: str, env: Mapping[str, str]) -> str:
    return shell.kubernetes_expand(arg, env)


def simple_commands(command: Sequence[str], env: Mapping[str, str]) -> list[list[str]]:
    """The argument vectors the container runs, in order (the shell's list split at its operators), read by
    kernel.shell as the policy pack reads them: $VAR, ${VAR:-x} and $((...)) expanded from the environment."""
    expanded = [shell.kubernetes_expand(arg, env) for arg in command]
    script = shell.shell_script(expanded)
    if script is None:
        return [expanded]
    return [[shell.shell_expand(word, env) for word in words] for words in shell.simple_commands(script)]


def invocation_of(words: Sequence[str]) -> Invocation | None:
    """The engine (or Ray script) a simple command runs, with its arguments; None for anything else."""
    words = list(words)
    while words and (words[0] in {"exec", "env"} or _ASSIGNMENT.match(words[0])):
        words.pop(0)
    if not words:
        return None
    program = os.path.basename(words[0])
    if _PYTHON.fullmatch(program) and len(words) >= 3 and words[1] == "-m" and words[2] in MODULES:
        engine, entrypoint = MODULES[words[2]]
        return Invocation(engine.value, entrypoint, tuple(words[3:]))
    if program == "vllm" and len(words) >= 2 and words[1] == "serve":
        return Invocation(Engine.VLLM.value, "serve", tuple(words[2:]))
    if program in {"bash", "sh"} and len(words) >= 2:
        words.pop(0)
        program = os.path.basename(words[0])
    if program == RAY_SCRIPT and len(words) >= 2:
        return Invocation("ray-script", words[1], tuple(words[2:]))
    return None


def invocations(command: Sequence[str], env: Mapping[str, str]) -> list[Invocation]:
    found = (invocation_of(words) for words in simple_commands(command, env))
    return [invocation for invocation in found if invocation is not None]


def release_of(image: str) -> str | None:
    """The engine release an image's tag names: `vllm/vllm-openai:v0.10.0` -> `0.10.0`,
    `lmsysorg/sglang:v0.4.10.post2-cu126` -> `0.4.10.post2`; None for a digest or an unversioned tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.split(":", 1)[1].split("-", 1)[0]
    try:
        return str(Version(tag))
    except InvalidVersion:
        return None
