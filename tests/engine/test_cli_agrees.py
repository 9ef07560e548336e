"""`lws-guard check` and `pulumi preview --policy-pack` agree: the same hand-written YAML, applied through the
default stack's `manifests` and judged by the real engine, and checked as plain files by the command with the
policy config generated from the stack file, gets the same verdicts, message for message."""

from __future__ import annotations

import io
import json
import re
from collections import Counter

import pytest
import yaml
from lws_guard import cli

from harness.scratch import Project
from tests.policies.helpers import CONFIG_DIR, LEADER, WORKER, load, set_in

pytestmark = pytest.mark.engine

Verdict = tuple[str, str, str]  # level, policy, message
# `- [mandatory]  gpu-memory  (kubernetes:...:LeaderWorkerSet: manifests:inference/qwen3-vllm)`, then the
# policy's description, then the message.
VIOLATION = re.compile(r"^\s*- \[(mandatory|advisory)\]\s+(\S+)\s+\((\S+): (.+)\)\s*$")


def engine_verdicts(output: str, names: tuple[str, ...]) -> Counter[Verdict]:
    lines = output.splitlines()
    found: Counter[Verdict] = Counter()
    for index, line in enumerate(lines):
        match = VIOLATION.match(line)
        message = lines[index + 2].strip() if index + 2 < len(lines) else ""
        # Stack policies report on the stack resource; their messages name the LeaderWorkerSet.
        if match and (match.group(4).endswith(names) or any(f"{name}:" in message for name in names)):
            found[(match.group(1), match.group(2), message)] += 1
    return found


def test_the_command_and_the_engine_agree_on_a_stack(project: Project) -> None:
    on_a10 = load("ack_qwen3_vllm")[0]
    for spec in (LEADER, WORKER):
        on_a10 = set_in(on_a10, f"{spec}.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-A10"})
    files = {"qwen3-a10.yaml": [on_a10], "cce-walkthrough.yaml": load("cce_llama405b")}
    for index, (name, docs) in enumerate(files.items()):
        (project.path / name).write_text(yaml.safe_dump_all(docs))
        project.set(f"manifests[{index}]", name)

    preview = project.pulumi(
        "preview", "--policy-pack", "policies", "--policy-pack-config", str(CONFIG_DIR / "dev.json"), check=False
    )
    output = preview.stdout + preview.stderr
    from_engine = engine_verdicts(output, ("inference/qwen3-vllm", "llama-405b"))

    out = io.StringIO()
    paths = [str(project.path / name) for name in files]
    code = cli.main(["check", "--profile", str(project.path / "Pulumi.test.yaml"), "--format", "json", *paths],
                    stdout=out)  # fmt: skip
    report = json.loads(out.getvalue())
    from_command = Counter((f["level"], f["policy"], f["message"]) for f in report["findings"])

    assert {policy for _, policy, _ in from_engine} >= {"gpu-memory", "no-plaintext-secrets", "image-pinned"}, output
    assert from_command == from_engine, output
    assert preview.returncode != 0 and code == 1, "a mandatory finding fails both"
