"""Edits that would lose data or access, through the real engine on the default stack (issue 13): each is refused
by `pulumi preview` with the key and the fix, or planned so nothing is lost, before anything changes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scratch import Project, default_stack_config, scratch_project

pytestmark = pytest.mark.engine


def output(result: Any) -> str:
    return str(result.stdout + result.stderr)


def refused(project: Project, *words: str) -> str:
    result = project.pulumi("preview", check=False)
    text = output(result)
    assert result.returncode != 0, text
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    return text


_STEP = re.compile(r"^\s*[~+-]*\s*\S+: \(([a-z-]+)\)\n(?:\s*\[id=[^\]]*\]\n)?\s*\[urn=[^\]]*::([^\]:]+)\]", re.M)


def steps(text: str) -> list[tuple[str, str]]:
    """(operation, resource name) of every step of a `pulumi preview --diff`, in order."""
    return [(op, name) for op, name in _STEP.findall(text)]


def edit_stack_file(project: Project, edit: Any) -> None:
    path = project.path / "Pulumi.test.yaml"
    stack = yaml.safe_load(path.read_text())
    edit(stack["config"])
    path.write_text(yaml.safe_dump(stack))


def test_a_misspelt_models_key_is_refused_and_deletes_nothing(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    before = set(project.objects("LeaderWorkerSet"))
    edit_stack_file(project, lambda c: c.__setitem__("lws-inference:model", c.pop("lws-inference:models")))

    refused(project, "model: unknown key", "did you mean `models`?")
    result = project.pulumi("up", "--yes", check=False)
    assert result.returncode != 0
    assert set(project.objects("LeaderWorkerSet")) == before == {"llama-3-1-405b", "qwen3-32b", "qwen3-30b-a3b"}


def test_a_misspelt_target_key_is_refused_instead_of_applying_to_the_ambient_context(project: Project) -> None:
    edit_stack_file(project, lambda c: c.__setitem__("lws-inference:targets", c.pop("lws-inference:target")))
    refused(project, "targets: unknown key", "did you mean `target`?")


def test_the_controllers_namespace_for_the_groups_is_refused(project: Project) -> None:
    project.set("cluster.namespace", "lws-system")
    refused(project, "cluster.namespace: `lws-system` is also cluster.lws.namespace", "deletes the model claim")


def test_a_model_named_after_another_models_leader_service_is_refused(project: Project) -> None:
    project.set("models[1].name", "llama-3-1-405b-leader")
    refused(project, "models[1].name: `llama-3-1-405b-leader` collides with models[0].name `llama-3-1-405b`")


def test_credentials_in_extra_args_are_refused_and_never_reach_state(project: Project) -> None:
    key = "sk-engine-test-0123456789"
    edit_stack_file(
        project, lambda c: c["lws-inference:models"][1]["serving"].__setitem__("extraArgs", ["--api-key", key])
    )
    text = refused(project, "models[1].serving.extraArgs[0]: looks like a credential (flag --api-key)")
    assert key not in text
    assert key not in project.state()


def test_the_api_key_reaches_the_groups_from_a_secret_only(project: Project) -> None:
    key = "sk-engine-test-api-key-0123456789"
    project.set("apiKey", key, secret=True)
    project.pulumi("up", "--yes", "--skip-preview")
    groups = project.objects("LeaderWorkerSet")
    sglang = groups["qwen3-32b"]["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert sglang["command"][-2:] == ["--api-key", "$(API_KEY)"]
    assert {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "models-api-key", "key": "apiKey"}}} in sglang[
        "env"
    ]
    rendered = "\n".join(p.read_text() for p in project.rendered.rglob("*.yaml"))
    assert key not in rendered and key not in project.state()


def test_destroy_then_up_binds_the_same_volume_again(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    (volume,) = project.objects("PersistentVolume").values()
    (claim,) = project.objects("PersistentVolumeClaim").values()
    assert volume["spec"]["claimRef"]["name"] == claim["metadata"]["name"]
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]

    project.pulumi("destroy", "--yes", "--skip-preview")
    project.pulumi("up", "--yes", "--skip-preview")
    assert list(project.objects("PersistentVolume")) == [volume["metadata"]["name"]]
    assert list(project.objects("PersistentVolumeClaim")) == [claim["metadata"]["name"]]


def test_an_access_mode_change_creates_the_new_volume_before_deleting_the_old(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    (old,) = project.objects("PersistentVolume")
    project.set("cluster.storage.nfs.accessMode", "ReadWriteMany")
    planned = steps(output(project.pulumi("preview", "--diff", "--show-replacement-steps")))
    for name in ("models-volume", "models-claim"):
        assert planned.index(("create-replacement", name)) < planned.index(("delete-replaced", name)), planned
    project.pulumi("up", "--yes", "--skip-preview")
    (new,) = project.objects("PersistentVolume")
    assert new != old


@pytest.fixture
def lws_061(tmp_path: Path) -> Project:
    """The default stack on a cluster whose add-on runs LWS 0.6.1 (CCE): group sizes cannot change in place."""
    config = default_stack_config()
    config["config"]["lws-inference:cluster"]["lws"] = {"mode": "managed", "version": "0.6.1"}
    return scratch_project(tmp_path, config)


def test_on_lws_0_6_1_a_group_size_change_is_planned_as_a_replace_with_the_downtime(lws_061: Project) -> None:
    lws_061.pulumi("up", "--yes", "--skip-preview")
    lws_061.set("models[0].serving.pipelineParallel", "4")

    text = output(lws_061.pulumi("preview", "--diff"))
    assert ("replace", "llama-3-1-405b-lws") in steps(text), text
    assert "LWS 0.6.1 cannot change a group's size in place" in text
    assert "the model serves nothing until the new groups are Available" in text

    lws_061.pulumi("up", "--yes", "--skip-preview")
    llama = lws_061.objects("LeaderWorkerSet")["llama-3-1-405b"]
    assert llama["spec"]["leaderWorkerTemplate"]["size"] == 4


def test_on_lws_0_7_the_same_change_is_an_update(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    project.set("models[0].serving.pipelineParallel", "4")
    text = output(project.pulumi("preview", "--diff"))
    assert ("update", "llama-3-1-405b-lws") in steps(text), text
    assert "cannot change a group's size in place" not in text
