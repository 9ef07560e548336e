"""The default stack through the real engine: preview, up, no-op rerun, refused upgrade, destroy."""

from __future__ import annotations

import shutil

import pytest

from harness.scratch import Project

pytestmark = pytest.mark.engine


def test_up_renders_the_groups_rerun_changes_nothing_and_destroy_keeps_data(project: Project) -> None:
    project.pulumi("preview")
    project.pulumi("up", "--yes", "--skip-preview")

    groups = project.objects("LeaderWorkerSet")
    assert set(groups) == {"llama-3-1-405b", "qwen3-32b"}
    llama = groups["llama-3-1-405b"]["spec"]
    assert llama["replicas"] == 2
    assert llama["leaderWorkerTemplate"]["size"] == 2
    leader = llama["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == "8"
    script = leader["command"][-1]
    assert "--tensor-parallel-size 8" in script and "--pipeline-parallel-size 2" in script
    assert "--ray_cluster_size=$(LWS_GROUP_SIZE)" in script
    assert "startupProbe" in leader

    services = project.objects("Service")
    assert services["qwen3-32b-leader"]["spec"]["selector"]["app.kubernetes.io/component"] == "leader"
    volume = project.objects("PersistentVolume")["models-inference"]
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    controller = project.objects("Deployment")["lws-controller-manager"]
    manager = controller["spec"]["template"]["spec"]["containers"][0]
    assert manager["image"] == "registry.k8s.io/lws/lws:v0.7.0"
    assert manager["imagePullPolicy"] == "IfNotPresent"

    rerun = project.pulumi("preview", "--expect-no-changes")
    assert rerun.returncode == 0

    project.pulumi("destroy", "--yes", "--skip-preview")
    assert project.objects("LeaderWorkerSet") == {}
    # The CRD (deleting it would delete every LeaderWorkerSet) and the model PV are kept.
    assert "leaderworkersets.leaderworkerset.x-k8s.io" in project.objects("CustomResourceDefinition")
    assert "models-inference" in project.objects("PersistentVolume")


def test_controller_version_change_is_refused_in_preview_unless_a_window_is_declared(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    newer = project.path / "charts" / "lws-0.8.0"
    shutil.copytree(project.path / ".tools" / "charts" / "lws-0.7.0", newer)
    project.set("cluster.lws.version", "0.8.0")
    project.set("cluster.lws.chart", str(newer))

    refused = project.pulumi("preview", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "online upgrade" in output and "0.7.0" in output and "0.8.0" in output
    assert "Offline procedure" in output
    assert "Traceback" not in output

    project.set("cluster.lws.maintenanceWindow", "true")
    project.pulumi("preview")


def test_bad_config_names_the_key_and_applies_nothing(project: Project) -> None:
    project.set("models[1].serving.tensorParallel", "3")
    project.set("cluster.gpu.perNode", "0")
    result = project.pulumi("up", "--yes", "--skip-preview", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cluster.gpu.perNode" in output
    assert "Traceback" not in output
    assert project.manifests() == []


def test_secrets_never_reach_rendered_files_or_state(project: Project) -> None:
    token = "hf_engine_test_token_value_0123456789"
    project.set("hfToken", token, secret=True)
    result = project.pulumi("up", "--yes", "--skip-preview")
    assert "is not rendered" in result.stdout + result.stderr
    env = project.objects("LeaderWorkerSet")["qwen3-32b"]["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    names = [e["name"] for e in env["spec"]["containers"][0]["env"]]
    assert "HF_TOKEN" in names
    rendered = "\n".join(p.read_text() for p in project.rendered.rglob("*.yaml"))
    assert token not in rendered
    assert token not in project.state()
