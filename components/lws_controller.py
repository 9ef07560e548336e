"""The LeaderWorkerSet controller: installed from its Helm chart, or declared when a cloud add-on owns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import PACKAGE
from components.chart_objects import ChartObjects, ChartSource, from_transform
from components.objects import SERVICE, declare
from kernel import lws_api
from kernel.rules import check_controller_upgrade
from kernel.type_tokens import CRD_TYPE, type_token
from plan.manifests import SKIP_AWAIT_ANNOTATION, ControllerOptions, controller_pod_fields, controller_values

VERSION_LABEL = "inference.lws.dev/lws-version"


@dataclass(frozen=True)
class LwsControllerArgs:
    mode: str
    """install | managed | none"""
    version: str
    chart: str
    namespace: str
    image_repository: str | None = None
    maintenance_window: bool = False
    external_webhook: ExternalWebhookArgs | None = None
    options: ControllerOptions = field(default_factory=ControllerOptions)
    chart_values: dict[str, Any] = field(default_factory=dict)
    """Further chart values, e.g. enablePrometheus from cluster.monitoring."""


@dataclass(frozen=True)
class ExternalWebhookArgs:
    """A controller outside the cluster: the chart's webhooks call `url` and trust `ca_bundle` (base64 PEM)."""

    url: str
    ca_bundle: str


class OnlineUpgradeError(Exception):
    """Raised by the controller's before_update hook: fails preview and up before anything changes."""


def _version_hook(maintenance_window: bool) -> pulumi.ResourceHook:
    def check(args: pulumi.ResourceHookArgs) -> None:
        def version(inputs: Any) -> str | None:
            labels = ((inputs or {}).get("metadata") or {}).get("labels") or {}
            value = labels.get(VERSION_LABEL)
            return str(value) if value is not None else None

        findings = check_controller_upgrade(version(args.old_inputs), version(args.new_inputs), maintenance_window)
        if findings:
            raise OnlineUpgradeError("cluster.lws.version: " + findings[0].message)

    return pulumi.ResourceHook("lws-no-online-upgrade", check, pulumi.ResourceHookOptions(on_dry_run=True))


def _keep_crds(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Deleting the LWS CRD deletes every LeaderWorkerSet in the cluster, so it outlives the stack."""
    if args.type_ != CRD_TYPE:
        return None
    return pulumi.ResourceTransformResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )


WEBHOOK_TYPES = (
    type_token("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    type_token("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
)


def _serve_webhooks_at(endpoint: ExternalWebhookArgs) -> pulumi.ResourceTransform:
    """The chart's webhooks call its Service, whose pods only exist in-cluster; point them at the endpoint."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ not in WEBHOOK_TYPES:
            return None
        hooks: list[dict[str, Any]] = args.props.get("webhooks") or []  # type: ignore[assignment]
        webhooks = [_with_url(hook, endpoint) for hook in hooks]
        return pulumi.ResourceTransformResult({**args.props, "webhooks": webhooks}, args.opts)

    return transform


def _with_url(hook: dict[str, Any], endpoint: ExternalWebhookArgs) -> dict[str, Any]:
    path = ((hook.get("clientConfig") or {}).get("service") or {}).get("path", "")
    return {**hook, "clientConfig": {"url": endpoint.url + path, "caBundle": endpoint.ca_bundle}}


SERVICE_TYPE = type_token(*SERVICE)


def _skip_service_awaits(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """With the webhooks at an external endpoint no admission call goes through the chart's Services, and their
    await is a fixed 10 s settle (plan/manifests.py SKIP_AWAIT_ANNOTATION) that every group would wait for. In the
    cluster the webhook Service keeps it: it stands between the controller's pod turning Ready and the first
    LeaderWorkerSet, the window in which an install fails with "no endpoints available for service"."""
    if args.type_ != SERVICE_TYPE:
        return None
    metadata: dict[str, Any] = args.props.get("metadata") or {}  # type: ignore[assignment]
    annotations = {**(metadata.get("annotations") or {}), SKIP_AWAIT_ANNOTATION: "true"}
    props = {**args.props, "metadata": {**metadata, "annotations": annotations}}
    return pulumi.ResourceTransformResult(props, args.opts)


DEPLOYMENT_TYPE = type_token("apps/v1", "Deployment")


def _set_pod_fields(fields: dict[str, Any]) -> pulumi.ResourceTransform:
    """Pod fields the chart has no value for (priorityClassName), set on the controller's Deployment."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != DEPLOYMENT_TYPE:
            return None
        spec: dict[str, Any] = args.props.get("spec") or {}  # type: ignore[assignment]
        template: dict[str, Any] = dict(spec.get("template") or {})
        template["spec"] = {**(template.get("spec") or {}), **fields}
        return pulumi.ResourceTransformResult({**args.props, "spec": {**spec, "template": template}}, args.opts)

    return transform


def used_by_groups(obj: dict[str, Any]) -> bool:
    """Whether the model groups wait for this chart object: everything but the CRDs of other APIs (LWS 0.9's
    DisaggregatedSet), which no group uses and which are retained on delete, so destroy order does not need them
    either. Waiting for one put its 0.7 s of engine steps (Check and Diff of 650 KB) before every group."""
    if obj.get("kind") != "CustomResourceDefinition":
        return True
    return (obj.get("spec") or {}).get("group") == lws_api.GROUP


class LwsController(pulumi.ComponentResource):
    """Installs (mode install) or declares (managed, none) the LWS controller.

    Outputs: `version`, the controller release the workloads may rely on; `ready`, the resources workloads depend
    on, so `pulumi destroy` removes LeaderWorkerSets before the controller; `groups_ready`, the part of them the
    model groups need (see used_by_groups).
    """

    version: pulumi.Output[str]
    ready: pulumi.Output[list[pulumi.Resource]]
    groups_ready: pulumi.Output[list[pulumi.Resource]]

    def __init__(self, name: str, args: LwsControllerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:controller:LwsController", name, None, opts)
        version = args.version.removeprefix("v")
        self.version = pulumi.Output.from_input(version)
        if args.mode != "install":
            self.ready = self.groups_ready = pulumi.Output.from_input([])
            self.register_outputs({"version": self.version})
            return
        namespace = declare(
            f"{name}-namespace",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": args.namespace, "labels": {VERSION_LABEL: version}},
            },
            pulumi.ResourceOptions(
                parent=self,
                hooks=pulumi.ResourceHookBinding(before_update=[_version_hook(args.maintenance_window)]),
            ),
        )
        local = not args.chart.startswith("oci://")
        values = {**controller_values(version, args.image_repository, args.options), **args.chart_values}
        source = ChartSource(args.chart, None if local else version, name, args.namespace, values)
        transforms: list[pulumi.ResourceTransform] = [_keep_crds]
        if args.external_webhook:
            transforms += [_serve_webhooks_at(args.external_webhook), _skip_service_awaits]
        if pod_fields := controller_pod_fields(args.options):
            transforms.append(_set_pod_fields(pod_fields))
        chart = ChartObjects(
            source,
            [from_transform(t) for t in transforms],
            pulumi.ResourceOptions(parent=self, depends_on=[namespace], provider=opts.provider if opts else None),
        )
        self.ready = pulumi.Output.from_input([namespace, *chart.resources])
        used = [r for r, obj in zip(chart.resources, chart.objects, strict=True) if used_by_groups(obj)]
        self.groups_ready = pulumi.Output.from_input([namespace, *used])
        self.register_outputs({"version": self.version})
