"""Edits of a stack that would lose data or access (issue 13): each is refused in preview with the key and the
fix, or made safe by design. The engine runs of the same cases are in tests/engine/test_data_safety.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from lws_guard.pack import RESOURCE_RULES
from pulumi.runtime.mocks import MockMonitor

from config.load import ConfigError, parse, project_keys
from config.model import SECRET_KEYS
from plan.group import PlanError, plan_stack
from plan.manifests import NfsVolume, OssVolume, Placement, leader_worker_set, volume_identity
from tests.factories import ack_qwen3_32b, cce_llama405b, delete_path, deployment, set_path, tiny_card, tiny_model
from tests.policies.helpers import LWS as LWS_TYPE
from tests.policies.helpers import settings_for
from tests.test_components import LWS, PV, PVC, SECRET, Recorder, deploy, leader_of, recorder, reveal

__all__ = ["recorder"]  # the fixture, shared with tests/test_components.py


def config_errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return caught.value.lines


def plan_errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(PlanError) as caught:
        plan_stack(parse(raw))
    return [str(p) for p in caught.value.problems]


def errors(raw: dict[str, Any]) -> list[str]:
    """Config or plan errors: either stops the preview before anything is declared."""
    try:
        plan_stack(parse(raw))
    except ConfigError as error:
        return error.lines
    except PlanError as error:
        return [str(p) for p in error.problems]
    pytest.fail("accepted")


# ---- misspelt top-level keys ---------------------------------------------------------------------


def test_a_misspelt_models_key_is_refused_instead_of_deleting_every_group() -> None:
    raw = tiny_model()
    raw["model"] = raw.pop("models")

    (line,) = config_errors(raw)
    assert line.startswith("model: unknown key")
    assert "did you mean `models`?" in line and "lws-inference:model" in line


def test_every_unknown_top_level_key_is_listed_with_the_other_problems() -> None:
    raw = set_path(tiny_model(), "targets", {"renderDir": "out"})  # would apply to the ambient context
    raw = set_path(raw, "Cluster", {})
    raw = set_path(raw, "cluster.gpu.perNode", 0)

    lines = config_errors(raw)
    assert [line.split(":")[0] for line in lines] == ["Cluster", "targets", "cluster.gpu.perNode"]
    assert "did you mean `target`?" in lines[1]
    assert "did you mean `cluster`?" in lines[0]


def test_unknown_keys_are_reported_even_without_a_cluster() -> None:
    lines = config_errors({"clusters": {"name": "x"}})
    assert [line.split(":")[0] for line in lines] == ["clusters", "cluster"]


def test_secret_keys_are_valid_top_level_keys() -> None:
    raw = tiny_model() | dict.fromkeys(SECRET_KEYS, "encrypted")
    assert parse(raw).models
    assert "apiKey" in SECRET_KEYS


def test_project_keys_lists_every_key_of_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", '{"lws-inference:targets": "{}", "kubernetes:context": "x"}')
    pulumi.runtime.set_all_config({"lws-inference:model": "[]", "lws-inference:cluster": "{}"})
    try:
        assert project_keys("lws-inference") == ["cluster", "model", "targets"]
    finally:
        pulumi.runtime.set_all_config({})


# ---- namespaces -----------------------------------------------------------------------------------


def test_the_inference_namespace_may_not_be_the_installed_controllers() -> None:
    raw = set_path(tiny_model(), "cluster.namespace", "lws-system")

    (line,) = plan_errors(raw)
    assert line.startswith("cluster.namespace: `lws-system` is also cluster.lws.namespace")
    assert "deletes the model claim" in line


def test_a_managed_controller_installs_no_namespace_to_collide_with() -> None:
    raw = set_path(set_path(tiny_model(), "cluster.namespace", "lws-system"), "cluster.lws.mode", "managed")
    assert plan_stack(parse(raw)).groups


# ---- names the LWS controller creates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "objects"),
    [("tiny-leader", "leader Service tiny-leader"), ("tiny-0", "StatefulSet"), ("tiny-1-1", "worker pods")],
)
def test_a_model_named_like_another_models_objects_is_refused_naming_both_keys(other: str, objects: str) -> None:
    raw = tiny_model()
    raw["models"].append(deployment(other, tiny_card(), tensorParallel=2, gpusPerPod=1, maxModelLen=4096))

    (line,) = plan_errors(raw)
    assert line.startswith(f"models[1].name: `{other}` collides with models[0].name `tiny`")
    assert objects in line


def test_names_that_only_share_a_prefix_are_fine() -> None:
    raw = tiny_model()
    for name in ("tiny-a", "tinyx", "tiny-leader-b", "other-0"):
        raw["models"].append(deployment(name, tiny_card(), tensorParallel=2, gpusPerPod=1, maxModelLen=4096))
    assert len(plan_stack(parse(raw)).groups) == 5


# ---- crashes become errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("models[0].model.hiddenSize", 5, "set headDim"),  # was a ZeroDivisionError in the plan summary
        ("cluster.shmBaseGib", float("inf"), "finite"),  # was an OverflowError
        ("cluster.gpu.memoryMib", 10**400, "int32"),
        ("models[0].model.layers", 10**400, "int32"),
        ("models[0].serving.replicas", 2**31, "int32"),  # was accepted: the API server refuses it
        ("models[0].serving.tensorParallel", True, "not a boolean"),  # was TP=1
        ("cluster.gpu.nodeMemoryGib", 1e300, "1e15"),
        ("models[0].serving.pipelineParallel", 29, "exceeds the model's 28 layers"),
    ],
)
def test_absurd_numbers_are_errors_naming_the_key(key: str, value: Any, says: str) -> None:
    raw = set_path(tiny_model(), key, value)
    if key.endswith("hiddenSize"):
        raw = delete_path(raw, "models[0].model.headDim") if "headDim" in raw["models"][0]["model"] else raw

    lines = errors(raw)
    assert any(line.startswith(key.rsplit(".hiddenSize", 1)[0]) and says in line for line in lines), lines
    assert all(len(line) < 600 for line in lines), "a 400-digit number must not be echoed whole"


# ---- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["--api-key", "sk-0123456789abcdef"], ["--hf-token=hf_abcdefghijklmnop"], ["--token", "tok-0123456789"],
     ["--chat-template-header", "sk-live0123456789"]],
)  # fmt: skip
def test_credentials_in_extra_args_are_refused_without_echoing_them(args: list[str]) -> None:
    raw = set_path(tiny_model(), "models[0].serving.extraArgs", ["--trust-remote-code", *args])

    lines = plan_errors(raw)
    assert lines and all(line.startswith("models[0].serving.extraArgs[") for line in lines), lines
    assert "pulumi config set --secret apiKey" in lines[0]
    for part in [a.partition("=")[2] or a for a in args if not a.startswith("--") or "=" in a]:
        assert part not in "\n".join(lines)


def test_ordinary_flags_that_mention_tokens_are_fine() -> None:
    raw = set_path(tiny_model(), "models[0].serving.extraArgs", ["--max-num-batched-tokens", "8192", "--tokenizer",
                                                                 "org/tok", "--skip-tokenizer-init"])  # fmt: skip
    assert plan_stack(parse(raw)).groups


@pytest.fixture
def registrations(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The registration requests (options included) by resource name, on top of the recorder."""
    requests: dict[str, Any] = {}
    register = MockMonitor.RegisterResource

    def keep(monitor: MockMonitor, request: Any) -> Any:
        requests[request.name] = request
        return register(monitor, request)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(MockMonitor, "RegisterResource", keep)
    yield requests


@pytest.mark.parametrize(("engine", "env"), [("vllm", "VLLM_API_KEY"), ("sglang", "API_KEY")])
def test_the_api_key_reaches_the_leader_from_a_secret_only(recorder: Recorder, engine: str, env: str) -> None:
    key = "sk-server-key-0123456789"
    deploy(recorder, tiny_model(engine), {"apiKey": pulumi.Output.secret(key)})

    secret = next(s for s in recorder.of_type(SECRET) if s.name == "models-api-key-secret")
    assert reveal(dict(secret.inputs))["stringData"] == {"apiKey": key}
    lws = recorder.one(LWS)
    leader = leader_of(lws)
    (api_key,) = [e for e in leader["env"] if e["name"] == env]
    assert api_key["valueFrom"]["secretKeyRef"] == {"name": "models-api-key", "key": "apiKey"}
    if engine == "sglang":
        assert leader["command"][-2:] == ["--api-key", "$(API_KEY)"]
    assert key not in str(lws)


def test_without_an_api_key_nothing_changes(recorder: Recorder) -> None:
    deploy(recorder, tiny_model("sglang"))
    leader = leader_of(recorder.one(LWS))
    assert "--api-key" not in leader["command"]
    assert all(e["name"] != "API_KEY" for e in leader["env"])


# ---- autoscaling ---------------------------------------------------------------------------------


def test_with_autoscaling_the_group_count_is_left_to_the_hpa(recorder: Recorder) -> None:
    raw = set_path(tiny_model(), "models[0].serving.autoscaling", {"minReplicas": 1, "maxReplicas": 3})
    deploy(recorder, raw)
    assert "replicas" not in recorder.one(LWS)["spec"]


def test_without_autoscaling_the_stack_sets_the_group_count(recorder: Recorder) -> None:
    deploy(recorder, set_path(tiny_model(), "models[0].serving.replicas", 3))
    assert recorder.one(LWS)["spec"]["replicas"] == 3


# ---- group size on LWS < 0.7 ---------------------------------------------------------------------


def test_on_lws_0_6_a_size_change_replaces_the_group(registrations: dict[str, Any], recorder: Recorder) -> None:
    deploy(recorder, cce_llama405b())
    request = registrations["llama-405b-lws"]
    assert list(request.replaceOnChanges) == ["spec.leaderWorkerTemplate.size"]
    assert request.deleteBeforeReplace  # a create first would apply the new size onto the same object


def test_from_lws_0_7_the_size_changes_in_place(registrations: dict[str, Any], recorder: Recorder) -> None:
    deploy(recorder, set_path(cce_llama405b(), "cluster.lws.version", "0.7.0"))
    assert list(registrations["llama-405b-lws"].replaceOnChanges) == []
    assert not registrations["llama-405b-lws"].deleteBeforeReplace


# ---- the model volume ----------------------------------------------------------------------------

NFS = NfsVolume("10.0.0.2", "/export/models", "ReadOnlyMany")
OSS = OssVolume("llm-models", "oss-cn-hangzhou-internal.aliyuncs.com", "/", "-o allow_other", "oss-creds", "inference")


def test_the_volume_identity_is_stable_for_the_same_volume() -> None:
    assert volume_identity("inference", 1024, NFS) == volume_identity("inference", 1024, NFS)


@pytest.mark.parametrize(
    "changed",
    [("other-ns", 1024, NFS), ("inference", 2048, NFS), ("inference", 1024, OSS),
     ("inference", 1024, NfsVolume("10.0.0.2", "/export/models", "ReadWriteMany")),
     ("inference", 1024, NfsVolume("10.0.0.3", "/export/models", "ReadOnlyMany"))],
    ids=["namespace", "capacity", "nfs-to-oss", "access-mode", "server"],
)  # fmt: skip
def test_an_edit_the_api_cannot_apply_in_place_gets_a_new_volume_name(changed: tuple[Any, ...]) -> None:
    before = volume_identity("inference", 1024, NFS)
    after = volume_identity(*changed)
    assert after != before
    assert after.startswith("oss-" if isinstance(changed[2], OssVolume) else "nfs-")


def test_the_pv_is_pre_bound_to_its_claim_and_not_left_behind_with_a_stale_claim_ref(
    registrations: dict[str, Any], recorder: Recorder
) -> None:
    deploy(recorder, tiny_model())
    pv, claim = recorder.one(PV), recorder.one(PVC)
    namespace, claim_name = claim["metadata"]["namespace"], claim["metadata"]["name"]
    assert pv["spec"]["claimRef"] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                      "namespace": namespace, "name": claim_name}  # fmt: skip
    assert "uid" not in pv["spec"]["claimRef"]
    assert claim["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pv["metadata"]["name"].startswith(f"models-{namespace}-nfs-")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    # A PV kept by destroy would keep the deleted claim's uid, and the next up's claim would stay Pending.
    assert registrations["models-volume"].retainOnDelete is False
    volumes = recorder.one(LWS)["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["volumes"]
    assert {"claimName": claim_name, "readOnly": True} in [v.get("persistentVolumeClaim") for v in volumes]


def test_switching_nfs_to_oss_gets_a_new_pv_name(recorder: Recorder) -> None:
    deploy(recorder, tiny_model())
    nfs = recorder.one(PV)["metadata"]["name"]
    recorder.resources.clear()
    raw = set_path(tiny_model(), "cluster.storage", ack_qwen3_32b()["cluster"]["storage"])
    secrets = {"ossAccessKeyId": pulumi.Output.secret("id"), "ossAccessKeySecret": pulumi.Output.secret("s")}
    deploy(recorder, raw, secrets)
    oss = recorder.one(PV)["metadata"]["name"]
    assert oss != nfs and "-oss-" in oss and "-nfs-" in nfs


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_groups_with_an_api_key_pass_every_policy(engine: str) -> None:
    [group] = plan_stack(parse(tiny_model(engine))).groups
    placement = Placement(namespace="inference", claim_name="models", mount_path="/models", api_key_secret="key")
    lws = leader_worker_set(group, placement)
    for rule in RESOURCE_RULES:
        assert rule.check(LWS_TYPE, lws, settings_for("dev", rule.name), name="tiny") == [], rule.name
