"""How a container's command becomes the programs it runs (no engine needed: pure functions)."""

from __future__ import annotations

import pytest

from engine_parsers.invocation import Invocation, expand_kubernetes, invocations, release_of, simple_commands

ENV = {"LWS_LEADER_ADDRESS": "g-0.g.ns", "LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": "1"}
SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"


def test_kubernetes_expands_defined_references_and_unescapes_double_dollars() -> None:
    assert expand_kubernetes("--nnodes=$(LWS_GROUP_SIZE)", ENV) == "--nnodes=2"
    assert expand_kubernetes("$$(LWS_GROUP_SIZE) $(UNDEFINED) $$", ENV) == "$(LWS_GROUP_SIZE) $(UNDEFINED) $"


def test_a_shell_script_splits_at_its_operators_and_expands_shell_variables() -> None:
    command = ["/bin/sh", "-c", f"bash {SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE);"
               " exec python3 -m sglang.launch_server --node-rank ${LWS_WORKER_INDEX} && true"]  # fmt: skip
    assert simple_commands(command, ENV) == [
        ["bash", SCRIPT, "leader", "--ray_cluster_size=2"],
        ["exec", "python3", "-m", "sglang.launch_server", "--node-rank", "1"],
        ["true"],
    ]


def test_the_programs_are_found_past_exec_and_assignments() -> None:
    command = ["sh", "-c", f"VLLM_HOST_IP=1.2.3.4 exec bash {SCRIPT} worker --ray_address=$(LWS_LEADER_ADDRESS)"
               " && vllm serve /models/m -tp 2 || python3 -m vllm.entrypoints.openai.api_server --port 1"]  # fmt: skip
    assert invocations(command, ENV) == [
        Invocation("ray-script", "worker", ("--ray_address=g-0.g.ns",)),
        Invocation("vllm", "serve", ("/models/m", "-tp", "2")),
        Invocation("vllm", "api_server", ("--port", "1")),
    ]


def test_a_command_without_a_shell_is_one_program() -> None:
    command = ["python3", "-m", "sglang.launch_server", "--dist-init-addr", "$(LWS_LEADER_ADDRESS):20000"]
    assert invocations(command, ENV) == [Invocation("sglang", "launch_server", ("--dist-init-addr", "g-0.g.ns:20000"))]


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("vllm/vllm-openai:v0.10.0", "0.10.0"),
        ("kube-ai-registry.cn-shanghai.cr.aliyuncs.com/kube-ai/vllm:v0.10.0", "0.10.0"),
        ("lmsysorg/sglang:v0.4.10.post2-cu126", "0.4.10.post2"),
        ("registry.local:5000/lmsysorg/sglang:v0.4.10.post2", "0.4.10.post2"),
        ("vllm/vllm-openai@sha256:" + "0" * 64, None),
        ("registry.local:5000/vllm/vllm-openai", None),
        ("lmsysorg/sglang:latest", None),
    ],
)
def test_the_engine_release_is_the_image_tag(image: str, release: str | None) -> None:
    assert release_of(image) == release
