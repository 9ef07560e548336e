"""Components under Pulumi mocks: what each stack declares, for both engines, both storages and both
controller modes, and the source documents' examples. Fast; the real engine is in tests/engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import callback_pb2

from components import chart_objects
from config.load import parse
from plan.group import plan_stack
from tests.factories import ack_qwen3_32b, cce_llama405b, set_path, tiny_model


def rendered_chart(options: dict[str, Any]) -> list[dict[str, Any]]:
    """What the provider's helm template returns for the LWS chart, cut down to the objects the tests look at (the
    kinds and webhook paths of charts/lws in kubernetes-sigs/lws v0.7.0)."""
    namespace = options["namespace"]
    manager = options["values"]["image"]["manager"]
    service = {"name": "lws-webhook-service", "namespace": namespace, "path": "/mutate--v1-pod"}
    return [
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"},
         "spec": {"group": "leaderworkerset.x-k8s.io"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "lws-controller-manager", "namespace": namespace},
         "spec": {"template": {"spec": {"containers": [
             {"name": "manager", "image": f"{manager['repository']}:{manager['tag']}"}]}}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": "lws-mutating-webhook-configuration"},
         "webhooks": [{"name": "mpod.kb.io", "clientConfig": {"service": service}}]},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lws-webhook-server-cert"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lws-webhook-service", "namespace": namespace},
         "spec": {"selector": {"control-plane": "controller-manager"}}},
        # The chart of LWS 0.9 adds the DisaggregatedSet API's CRD.
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "disaggregatedsets.disaggregatedset.x-k8s.io"},
         "spec": {"group": "disaggregatedset.x-k8s.io"}},
    ]  # fmt: skip


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.dependencies: dict[str, list[str]] = {}  # resource name -> URNs it depends on
        self.retained: dict[str, bool] = {}  # resource name -> retainOnDelete
        self.templates: list[dict[str, Any]] = []  # options of every helm template invoke
        self.callbacks = Callbacks()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "kubernetes:helm:template":
            options = json.loads(args.args["jsonOpts"])
            self.templates.append(options)
            return {"result": rendered_chart(options)}, []
        return {}, []

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> dict[str, Any]:
        (found,) = self.of_type(typ)
        return dict(reveal(found.inputs))

    def stacks_own(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        """Resources of the type besides the chart's objects (named `lws:...` as the chart's release)."""
        return [r for r in self.of_type(typ) if not r.name.startswith("lws:")]


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the mock monitor passes a secret value through


def reveal(value: Any) -> Any:
    """Inputs as the provider would see them, secrets unwrapped."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return reveal(value["value"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


class Callbacks:
    """Stands in for the SDK's callback server, which the mock monitor cannot host: records the controller's
    transforms and hooks so tests can call them as the engine would."""

    def __init__(self) -> None:
        self.transforms: list[Any] = []
        self.hooks: list[pulumi.ResourceHook] = []

    def register_transform(self, transform: Any) -> callback_pb2.Callback:
        self.transforms.append(transform)
        return callback_pb2.Callback(target="mock", token=str(len(self.transforms)))

    def register_resource_hook(self, hook: pulumi.ResourceHook) -> None:
        self.hooks.append(hook)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Recorder]:
    mocks = Recorder()
    register = MockMonitor.RegisterResource

    def recording(monitor: MockMonitor, request: Any) -> Any:
        mocks.dependencies[request.name] = list(request.dependencies)
        mocks.retained[request.name] = request.retainOnDelete
        return register(monitor, request)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(chart_objects, "CACHE_DIR", tmp_path / "charts")  # never the project's chart cache

    # MockResourceArgs carries no options, so dependencies are read from the registration request itself.
    monkeypatch.setattr(MockMonitor, "RegisterResource", recording)
    monkeypatch.setattr(pulumi.runtime.settings.SETTINGS, "callbacks", mocks.callbacks)
    pulumi.runtime.set_mocks(mocks, project="lws-inference", stack="test", preview=False)
    yield mocks


def deploy(recorder: Recorder, raw: dict[str, Any], secrets: dict[str, Any] | None = None) -> Recorder:
    """Run the stack under mocks; every registration has reached the recorder when this returns."""
    from components.stack import deploy as deploy_stack

    config = parse(raw)
    plan = plan_stack(config)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run() -> pulumi.Output[Any]:
        deployed = deploy_stack(config, secrets or {}, plan)
        return pulumi.Output.all(deployed.controller.version, *(g.url for g in deployed.groups.values()))

    run()
    return recorder


LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
PV = "kubernetes:core/v1:PersistentVolume"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SECRET = "kubernetes:core/v1:Secret"
SERVICE = "kubernetes:core/v1:Service"
CHART = "lws-inference:helm:ChartObjects"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def leader_of(lws: dict[str, Any]) -> dict[str, Any]:
    template = lws["spec"]["leaderWorkerTemplate"]
    container: dict[str, Any] = (template.get("leaderTemplate") or template["workerTemplate"])["spec"]["containers"][0]
    return container


def test_cce_example_declares_two_groups_of_two_pods_with_tp8_pp2(recorder: Recorder) -> None:
    deploy(recorder, cce_llama405b())
    lws = recorder.one(LWS)
    assert lws["spec"]["replicas"] == 2 and lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    leader = leader_of(lws)
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2" in leader["command"][-1]
    # LWS 0.6.1 (the CCE add-on) has no RecreateGroupAfterStart.
    assert lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    # Managed controller: the add-on owns it, nothing is installed.
    assert recorder.of_type(CHART) == [] and recorder.templates == []


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_ack_example_on_oss_with_an_installed_controller(recorder: Recorder, engine: str) -> None:
    secrets = {"ossAccessKeyId": pulumi.Output.secret("id"), "ossAccessKeySecret": pulumi.Output.secret("s")}
    deploy(recorder, ack_qwen3_32b(engine), secrets)
    pv = recorder.one(PV)
    assert pv["spec"]["csi"]["driver"] == "ossplugin.csi.alibabacloud.com"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["csi"]["nodePublishSecretRef"]["name"] == "oss-model-credentials"
    assert "akSecret" not in str(pv["spec"]["csi"]["volumeAttributes"])
    claim = recorder.one(PVC)
    assert claim["spec"]["selector"]["matchLabels"]["alicloud-pvname"] == pv["metadata"]["name"]
    (credentials,) = recorder.stacks_own(SECRET)
    assert {"akId", "akSecret"} <= set(reveal(credentials.inputs)["stringData"])

    (chart,) = recorder.templates
    assert chart["values"]["image"]["manager"] == {
        "repository": "registry.k8s.io/lws/lws", "tag": "v0.7.0", "pullPolicy": "IfNotPresent"}  # fmt: skip
    assert chart["version"] == "0.7.0" and chart["namespace"] == "lws-system"
    manager = recorder.one("kubernetes:apps/v1:Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert manager["image"] == "registry.k8s.io/lws/lws:v0.7.0"

    lws = recorder.one(LWS)
    leader = leader_of(lws)
    command = " ".join(leader["command"])
    if engine == "sglang":
        assert "--tp 2" in command and "--node-rank $(LWS_WORKER_INDEX)" in command
    else:
        assert "--ray_cluster_size=$(LWS_GROUP_SIZE)" in command
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == "1"
    mounts = {m["mountPath"]: m for m in leader["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True and "/dev/shm" in mounts


def test_nfs_volume_and_hf_token_come_from_secrets_by_reference(recorder: Recorder) -> None:
    deploy(recorder, tiny_model("sglang"), {"hfToken": pulumi.Output.secret("hf_x")})
    pv = recorder.one(PV)
    assert pv["spec"]["nfs"] == {"server": "10.0.0.2", "path": "/export/models", "readOnly": True}
    env = leader_of(recorder.one(LWS))["env"]
    (token,) = [e for e in env if e["name"] == "HF_TOKEN"]
    assert "value" not in token and token["valueFrom"]["secretKeyRef"]["key"] == "token"


def test_render_mode_leaves_secrets_out(recorder: Recorder) -> None:
    raw = set_path(tiny_model(), "target", {"renderDir": "rendered"})
    deploy(recorder, raw, {"hfToken": pulumi.Output.secret("hf_x")})
    assert recorder.stacks_own(SECRET) == []
    assert any(e["name"] == "HF_TOKEN" for e in leader_of(recorder.one(LWS))["env"])


def test_service_selects_only_leaders_and_network_policy_opens_only_the_port(recorder: Recorder) -> None:
    deploy(recorder, tiny_model())
    (registered,) = recorder.stacks_own(SERVICE)
    service = reveal(registered.inputs)
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "leader"
    # The LWS controller owns a headless Service named after the LeaderWorkerSet (the pods' DNS names).
    assert service["metadata"]["name"] != recorder.one(LWS)["metadata"]["name"]
    policy = recorder.one("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    outside = policy["spec"]["ingress"][1]
    assert outside["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_autoscaler_targets_the_lws_scale_subresource(recorder: Recorder) -> None:
    scaling = {"minReplicas": 1, "maxReplicas": 3, "backend": "hpa"}
    raw = set_path(tiny_model(), "models[0].serving.autoscaling", scaling)
    deploy(recorder, raw)
    hpa = recorder.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"
    assert hpa["spec"]["maxReplicas"] == 3


def test_groups_depend_on_the_controller_so_destroy_removes_them_first(recorder: Recorder) -> None:
    deploy(recorder, tiny_model())
    (group,) = recorder.of_type("lws-inference:workload:InferenceGroup")
    needs = recorder.dependencies[group.name]
    assert any("LwsController" in urn for urn in needs), needs


def test_groups_wait_for_the_lws_crd_and_webhook_but_not_for_another_apis_crd(recorder: Recorder) -> None:
    deploy(recorder, tiny_model())
    (group,) = recorder.of_type("lws-inference:workload:InferenceGroup")
    needs = recorder.dependencies[group.name]
    assert any(urn.endswith("::lws:leaderworkersets.leaderworkerset.x-k8s.io") for urn in needs), needs
    assert any(urn.endswith("::lws:lws-system/lws-webhook-service") for urn in needs), needs
    assert any(urn.endswith("::lws:lws-system/lws-controller-manager") for urn in needs), needs
    assert not any("disaggregatedset" in urn for urn in needs), needs


def namespace_inputs(version: str) -> dict[str, Any]:
    return {"metadata": {"name": "lws-system", "labels": {"inference.lws.dev/lws-version": version}}}


def run_hook(hook: pulumi.ResourceHook, old: str, new: str) -> None:
    hook.callback(
        pulumi.ResourceHookArgs(
            urn="urn", id="lws-system", name="controller-namespace", type="kubernetes:core/v1:Namespace",
            new_inputs=namespace_inputs(new), old_inputs=namespace_inputs(old),
        )
    )  # fmt: skip


@pytest.mark.parametrize("maintenance", [False, True])
def test_a_version_change_of_the_installed_controller_needs_a_maintenance_window(
    recorder: Recorder, maintenance: bool
) -> None:
    raw = set_path(ack_qwen3_32b("vllm"), "cluster.lws.maintenanceWindow", maintenance)
    deploy(recorder, raw, {"ossAccessKeyId": "i", "ossAccessKeySecret": "s"})
    (hook,) = recorder.callbacks.hooks
    assert hook.opts is not None and hook.opts.on_dry_run, "the refusal must come at preview, not half-way into up"
    run_hook(hook, "0.7.0", "0.7.0")
    if maintenance:
        run_hook(hook, "0.7.0", "0.8.0")
    else:
        from components.lws_controller import OnlineUpgradeError

        with pytest.raises(OnlineUpgradeError, match=r"cluster\.lws\.version: .*0\.7\.0.*0\.8\.0"):
            run_hook(hook, "0.7.0", "0.8.0")


def test_the_lws_crd_outlives_the_controller_component(recorder: Recorder) -> None:
    deploy(recorder, ack_qwen3_32b("sglang"), {"ossAccessKeyId": "i", "ossAccessKeySecret": "s"})
    crds = recorder.of_type(CRD)
    (manager,) = recorder.of_type("kubernetes:apps/v1:Deployment")
    assert len(crds) == 2 and all(recorder.retained[crd.name] for crd in crds)
    assert recorder.retained[manager.name] is False


def test_the_chart_is_rendered_once_for_its_version_and_values(recorder: Recorder) -> None:
    secrets = {"ossAccessKeyId": "i", "ossAccessKeySecret": "s"}
    deploy(recorder, ack_qwen3_32b("vllm"), secrets)
    deploy(recorder, ack_qwen3_32b("vllm"), secrets)
    assert len(recorder.templates) == 1, "the second run reads the cached rendering"
    deploy(recorder, set_path(ack_qwen3_32b("vllm"), "cluster.lws.imageRepository", "mirror.example/lws"), secrets)
    assert len(recorder.templates) == 2, "other values, another rendering"
    # Named as the v4 Chart named its children, so an applied stack keeps their URNs (through the alias).
    assert {r.name for r in recorder.of_type(CRD)} == {
        "lws:leaderworkersets.leaderworkerset.x-k8s.io", "lws:disaggregatedsets.disaggregatedset.x-k8s.io"}  # fmt: skip


def test_hand_written_manifests_are_applied_after_the_controller(
    recorder: Recorder, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "group.yaml").write_text("kind: LeaderWorkerSet\n")
    raw = ack_qwen3_32b("vllm")
    raw["manifests"] = ["group.yaml"]
    deploy(recorder, raw, {"ossAccessKeyId": "i", "ossAccessKeySecret": "s"})
    group = recorder.one("kubernetes:yaml/v2:ConfigGroup")
    assert group["files"] == ["group.yaml"]
    assert any("ChartObjects$kubernetes:apps/v1:Deployment" in urn for urn in recorder.dependencies["manifests"])
    # A hand-written manifest may be a DisaggregatedSet: it waits for every CRD of the chart.
    assert any(urn.endswith("disaggregatedset.x-k8s.io") for urn in recorder.dependencies["manifests"])


def test_an_out_of_cluster_controller_gets_the_chart_webhooks(recorder: Recorder, tmp_path: Any) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    raw = set_path(ack_qwen3_32b("vllm"), "cluster.lws.webhook", {"url": "https://127.0.0.1:9443/", "caFile": str(ca)})
    deploy(recorder, raw, {"ossAccessKeyId": "i", "ossAccessKeySecret": "s"})
    webhooks = recorder.one("kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration")
    (served,) = webhooks["webhooks"]
    assert served["clientConfig"]["url"] == "https://127.0.0.1:9443/mutate--v1-pod"
    assert served["clientConfig"]["caBundle"] == "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
    assert served["name"] == "mpod.kb.io"


def awaited_on_up(resource: pulumi.runtime.MockResourceArgs) -> bool:
    annotations = reveal(resource.inputs)["metadata"].get("annotations") or {}
    return annotations.get("pulumi.com/skipAwait") != "true"


def test_the_leader_service_is_not_awaited_the_group_is(recorder: Recorder) -> None:
    """The provider's Service await is a 10 s settle, not a readiness check; the group's await is the check."""
    deploy(recorder, tiny_model())
    (service,) = recorder.stacks_own(SERVICE)
    assert not awaited_on_up(service)
    assert "pulumi.com/waitFor" in reveal(recorder.of_type(LWS)[0].inputs)["metadata"]["annotations"]


@pytest.mark.parametrize("external", [False, True])
def test_the_webhook_service_is_awaited_only_where_admission_goes_through_it(
    recorder: Recorder, tmp_path: Any, external: bool
) -> None:
    raw = ack_qwen3_32b("vllm")
    if external:
        ca = tmp_path / "ca.crt"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        raw = set_path(raw, "cluster.lws.webhook", {"url": "https://127.0.0.1:9443/", "caFile": str(ca)})
    deploy(recorder, raw, {"ossAccessKeyId": "i", "ossAccessKeySecret": "s"})
    (webhook_service,) = [r for r in recorder.of_type(SERVICE) if r.name.startswith("lws:")]
    # In the cluster, its settle covers the window between the controller's pod Ready and its endpoints.
    assert awaited_on_up(webhook_service) is not external


def test_operations_come_after_their_group_and_a_model_without_any_waits_for_nothing(recorder: Recorder) -> None:
    scaling = {"minReplicas": 1, "maxReplicas": 3, "backend": "hpa"}
    deploy(recorder, set_path(tiny_model(), "models[0].serving.autoscaling", scaling))
    (hpa,) = recorder.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    # The autoscaler scales the LeaderWorkerSet: created after it, deleted before it.
    assert any(urn.endswith("-lws") for urn in recorder.dependencies[hpa.name]), recorder.dependencies[hpa.name]
    (operations,) = recorder.of_type("lws-inference:operations:ModelOperations")
    assert recorder.dependencies[operations.name] == []
