"""The default stack through the real engine, as a user runs it, on one stack the tests below use in order (as a
user would: a first preview with the policy pack, up, a rerun that changes nothing, a secret added, a refused
upgrade, destroy); a bad config gets a stack of its own."""

from __future__ import annotations

import shutil

import pytest

from harness.scratch import Project, default_stack_config, scratch_project
from tests.engine.test_policy_preview import with_policy_pack

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return scratch_project(tmp_path_factory.mktemp("default"), default_stack_config())


def test_a_new_stack_previews_and_passes_the_pack(default_stack: Project) -> None:
    result = with_policy_pack(default_stack, "preview")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mandatory" not in result.stdout


def test_up_renders_the_groups_and_a_rerun_changes_nothing(default_stack: Project) -> None:
    default_stack.pulumi("up", "--yes", "--skip-preview")

    groups = default_stack.objects("LeaderWorkerSet")
    assert set(groups) == {"llama-3-1-405b", "qwen3-32b", "qwen3-30b-a3b"}
    llama = groups["llama-3-1-405b"]["spec"]
    assert "replicas" not in llama  # its ScaledObject owns the group count (1 to 4)
    (scaled,) = [o for o in default_stack.objects("ScaledObject").values() if o["metadata"]["name"].startswith("llama")]
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 4)
    assert llama["leaderWorkerTemplate"]["size"] == 2
    leader = llama["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == "8"
    script = leader["command"][-1]
    assert "--tensor-parallel-size 8" in script and "--pipeline-parallel-size 2" in script
    assert "--ray_cluster_size=$(LWS_GROUP_SIZE)" in script
    assert "startupProbe" in leader

    services = default_stack.objects("Service")
    assert services["qwen3-32b-leader"]["spec"]["selector"]["app.kubernetes.io/component"] == "leader"
    (volume,) = default_stack.objects("PersistentVolume").values()
    assert volume["metadata"]["name"].startswith("models-inference-nfs-")
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    controller = default_stack.objects("Deployment")["lws-controller-manager"]
    manager = controller["spec"]["template"]["spec"]["containers"][0]
    assert manager["image"] == "registry.k8s.io/lws/lws:v0.9.0"
    assert manager["imagePullPolicy"] == "IfNotPresent"

    default_stack.pulumi("preview", "--expect-no-changes")


def test_secrets_never_reach_rendered_files_or_state(default_stack: Project) -> None:
    token = "hf_engine_test_token_value_0123456789"
    default_stack.set("hfToken", token, secret=True)
    result = default_stack.pulumi("up", "--yes", "--skip-preview")
    assert "is not rendered" in result.stdout + result.stderr
    env = default_stack.objects("LeaderWorkerSet")["qwen3-32b"]["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    names = [e["name"] for e in env["spec"]["containers"][0]["env"]]
    assert "HF_TOKEN" in names
    rendered = "\n".join(p.read_text() for p in default_stack.rendered.rglob("*.yaml"))
    assert token not in rendered
    assert token not in default_stack.state()


def test_controller_version_change_is_refused_in_preview_unless_a_window_is_declared(default_stack: Project) -> None:
    newer = default_stack.path / "charts" / "lws-0.10.0"
    shutil.copytree(default_stack.path / ".tools" / "charts" / "lws-0.9.0", newer)
    default_stack.set("cluster.lws.version", "0.10.0")
    default_stack.set("cluster.lws.chart", str(newer))

    refused = default_stack.pulumi("preview", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "online upgrade" in output and "0.9.0" in output and "0.10.0" in output
    assert "Offline procedure" in output
    assert "Traceback" not in output

    default_stack.set("cluster.lws.maintenanceWindow", "true")
    default_stack.pulumi("preview")


def test_destroy_keeps_the_crd_and_the_model_volume(default_stack: Project) -> None:
    default_stack.pulumi("destroy", "--yes", "--skip-preview")
    assert default_stack.objects("LeaderWorkerSet") == {}
    # The CRD (deleting it would delete every LeaderWorkerSet) is kept. The model PV object goes (its data is
    # untouched, reclaim policy Retain) so that the next up recreates it free of the deleted claim's uid.
    assert "leaderworkersets.leaderworkerset.x-k8s.io" in default_stack.objects("CustomResourceDefinition")
    assert default_stack.objects("PersistentVolume") == {}


def test_bad_config_names_the_key_and_applies_nothing(project: Project) -> None:
    project.set("models[1].serving.tensorParallel", "3")
    project.set("cluster.gpu.perNode", "0")
    result = project.pulumi("up", "--yes", "--skip-preview", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cluster.gpu.perNode" in output
    assert "Traceback" not in output
    assert project.manifests() == []
