"""Reading engine commands as the kubelet and the shell would: every common shell, env, arithmetic, entrypoints."""

from __future__ import annotations

import pytest

from kernel.catalog import Engine
from kernel.commands import image_entrypoint, read_flags, read_servers, unexpanded_lws_references
from kernel.images import parse_image
from kernel.rules import check_image_pinned, image_tag
from kernel.shell import evaluate_arithmetic, shell_script, simple_commands

SERVE = "vllm serve /models/Qwen3-32B --tensor-parallel-size 16"
SHELL_FORMS = [
    ["sh", "-c", SERVE],
    ["/bin/sh", "-c", SERVE],
    ["bash", "-c", SERVE],
    ["bash", "-lc", SERVE],
    ["bash", "-ec", SERVE],
    ["bash", "-o", "pipefail", "-c", SERVE],
    ["/usr/bin/env", "bash", "-c", SERVE],
    ["env", "FOO=1", "bash", "-xc", SERVE],
    ["dash", "-c", SERVE],
    ["zsh", "-c", SERVE],
    ["/usr/local/bin/bash", "-c", SERVE],
    ["/bin/bash", "-e", "-u", "-c", SERVE],
    ["busybox", "sh", "-c", SERVE],
]


@pytest.mark.parametrize("command", SHELL_FORMS, ids=[" ".join(c[:-1]) for c in SHELL_FORMS])
def test_every_common_shell_form_is_read(command: list[str]) -> None:
    flags = read_flags(command)
    assert flags.in_shell and flags.engine is Engine.VLLM
    assert flags.integer("tensor") == 16


def test_a_script_split_between_command_and_args() -> None:
    flags = read_flags(["/bin/bash", "-c", "set -e\n# start\nexec python3 -m sglang.launch_server \\\n  --tp=8 --dp 2"])
    assert (flags.engine, flags.integer("tensor"), flags.integer("data")) == (Engine.SGLANG, 8, 2)


def test_flags_split_between_command_and_args_in_exec_form() -> None:
    flags = read_flags(["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m", "-tp", "4", "-pp=2"])
    assert (flags.integer("tensor"), flags.integer("pipeline")) == (4, 2)


def test_switches_and_short_aliases() -> None:
    flags = read_flags(["vllm", "serve", "m", "-tp", "1", "-dp", "16", "--enable-expert-parallel"])
    assert flags.integer("data") == 16 and flags.switches == {"expert"}
    sglang = read_flags(["python3", "-m", "sglang.launch_server", "--tp", "16", "--dp", "16", "--enable-dp-attention"])
    assert sglang.switches == {"dp_attention"}


def test_variables_from_env_kubernetes_and_shell_forms() -> None:
    env = {"TP_SIZE": "8", "LWS_GROUP_SIZE": "2", "DP_SIZE_LOCAL": "8"}
    script = (
        "exec vllm serve m --tensor-parallel-size $TP_SIZE --pipeline-parallel-size ${PP:-2} "
        "--data-parallel-size $(( LWS_GROUP_SIZE * DP_SIZE_LOCAL )) --max-model-len $(CONTEXT)"
    )
    flags = read_flags(["bash", "-lc", script], {**env, "CONTEXT": "8192"})
    assert (flags.integer("tensor"), flags.integer("pipeline"), flags.integer("data")) == (8, 2, 16)
    assert flags.integer("context") == 8192  # $(CONTEXT) is expanded by the kubelet before the shell runs


def test_assignments_and_exports_inside_the_script() -> None:
    flags = read_flags(["sh", "-c", "export TP=4; DP=$((TP / 2)); vllm serve m -tp $TP -dp $DP"])
    assert (flags.integer("tensor"), flags.integer("data")) == (4, 2)


def test_what_cannot_be_resolved_stays_unresolved() -> None:
    flags = read_flags(["bash", "-c", "vllm serve m --tensor-parallel-size $TP_SIZE -dp $(nproc)"])
    assert flags.integer("tensor") is None and flags.unresolved("tensor")
    assert flags.integer("data") is None


def test_kubernetes_leaves_escaped_and_unknown_references_alone() -> None:
    flags = read_flags(["vllm", "serve", "m", "-tp", "$(TP)", "--model", "$$(TP)"], {"TP": "2"})
    assert flags.integer("tensor") == 2 and flags.values["model"] == "$(TP)"
    assert read_flags(["vllm", "serve", "m", "-tp", "$(UNKNOWN)"]).unresolved("tensor")


@pytest.mark.parametrize(
    ("expression", "value"),
    [("2*8", 16), ("A*B", 16), ("(A+B)/3", 3), ("-7/2", -3), ("7%3", 1), ("A**B", None), ("1/0", None),
     ("__import__('os')", None), ("9" * 40, None), ("C", None), ("2*" * 150 + "2", None)],
)  # fmt: skip
def test_arithmetic_is_evaluated_safely(expression: str, value: int | None) -> None:
    assert evaluate_arithmetic(expression, {"A": "8", "B": "2", "C": "x"}) == value


def test_two_servers_in_one_script_each_with_its_devices() -> None:
    script = "CUDA_VISIBLE_DEVICES=0,1,2,3 vllm serve a -tp 4 & CUDA_VISIBLE_DEVICES=4,5,6,7 vllm serve b -tp 4; wait"
    servers = read_servers(["bash", "-c", script])
    assert [(s.values["model"], s.visible_devices) for s in servers] == [("a", 4), ("b", 4)]


def test_lws_variables_inside_any_shell_are_fine_and_outside_are_not() -> None:
    assert unexpanded_lws_references(["bash", "-lc", "ray start --address=$LWS_LEADER_ADDRESS:6379"]) == []
    assert unexpanded_lws_references(["/usr/bin/env", "zsh", "-c", "x ${LWS_GROUP_SIZE}"]) == []
    assert unexpanded_lws_references(["ray", "start", "--address=$LWS_LEADER_ADDRESS:6379"]) == ["$LWS_LEADER_ADDRESS"]


def test_coordination_evidence() -> None:
    assert read_flags(["sh", "-c", "ray start --head && vllm serve m -tp 16"]).coordination == ("ray start",)
    assert "--headless" in read_flags(["vllm", "serve", "m", "--headless", "--nnodes", "2"]).coordination
    assert read_flags(["vllm", "serve", "m", "-tp", "8"]).coordination == ()


def test_comments_and_quotes_in_scripts() -> None:
    script = "# don't run this: vllm serve x -tp 99\nvllm serve m -tp 2 --kv-transfer-config '{\"a\": 1}' # trailing"
    assert read_flags(["bash", "-c", script]).integer("tensor") == 2
    assert simple_commands("a 'b; c' && d") == [["a", "b; c"], ["d"]]


def test_not_a_shell_script() -> None:
    assert shell_script(["bash", "/start.sh"]) is None
    assert shell_script(["python3", "-c", "print()"]) is None
    assert shell_script(["bash", "-c"]) is None


@pytest.mark.parametrize(
    ("image", "args", "entrypoint"),
    [
        ("vllm/vllm-openai:v0.10.1", ["openai/gpt-oss-120b", "--max-num-seqs", "8"], ("vllm", "serve")),
        ("docker.io/vllm/vllm-openai:v0.8.5", ["--model", "m", "-tp", "2"],
         ("python3", "-m", "vllm.entrypoints.openai.api_server")),
        ("lmsysorg/sglang:v0.5.18", ["--model-path", "m", "--tp", "2"], ("python3", "-m", "sglang.launch_server")),
        ("lmsysorg/sglang:v0.5.18", ["sleep", "infinity"], None),
        ("nginx:1.27", ["--model", "m"], None),
    ],
)  # fmt: skip
def test_images_whose_entrypoint_is_the_server(image: str, args: list[str], entrypoint: tuple[str, ...]) -> None:
    assert image_entrypoint(image, args) == entrypoint


@pytest.mark.parametrize(
    ("image", "repository", "tag", "digest", "path"),
    [
        ("registry.k8s.io/lws/lws:v0.7.0", "registry.k8s.io/lws/lws", "v0.7.0", None, "lws/lws"),
        ("localhost:5000/lws", "localhost:5000/lws", None, None, "lws"),
        ("vllm/vllm-openai", "vllm/vllm-openai", None, None, "vllm/vllm-openai"),
        ("ghcr.io/llm-d/llm-d@sha256:06ba", "ghcr.io/llm-d/llm-d", None, "sha256:06ba", "llm-d/llm-d"),
        ("lws:v1@sha256:ab", "lws", "v1", "sha256:ab", "lws"),
    ],
)
def test_one_image_parser(image: str, repository: str, tag: str | None, digest: str | None, path: str) -> None:
    ref = parse_image(image)
    assert (ref.repository, ref.tag, ref.digest, ref.path) == (repository, tag, digest, path)
    assert image_tag(image) == (f"@{digest}" if digest else tag)
    assert bool(check_image_pinned(image)) is (tag is None and digest is None)
