"""The whole stack from a checked plan: provider, controller, model storage, one group per model.

Kept apart from __main__.py so unit tests run it under Pulumi mocks with any config.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi_kubernetes.provider import Provider

from components.inference_group import InferenceGroup, InferenceGroupArgs
from components.lws_controller import ExternalWebhookArgs, LwsController, LwsControllerArgs
from components.model_storage import ModelStorage, ModelStorageArgs, OssCredentials
from components.objects import declare
from components.operations import ModelOperations, controller_chart_values, operations_args, reaching_namespaces
from components.statefulset_group import StatefulSetGroup
from config.model import Cluster, ExternalWebhook, StackConfig
from config.model import LwsController as LwsControllerConfig
from kernel.catalog import parse_version
from plan.group import GroupPlan, StackPlan
from plan.manifests import ControllerOptions, NfsVolume, OssVolume, Placement
from plan.safety import size_change_notice, size_is_immutable

if TYPE_CHECKING:  # the yaml module is imported only by a stack that has manifests
    from pulumi_kubernetes.yaml.v2 import ConfigGroup


@dataclass
class Deployed:
    controller: LwsController
    storage: ModelStorage
    groups: dict[str, InferenceGroup | StatefulSetGroup]
    manifests: ConfigGroup | None = None
    operations: dict[str, ModelOperations] = field(default_factory=dict)


def provider(config: StackConfig, secrets: dict[str, Any]) -> Provider:
    target = config.target
    if target.render_dir:
        return Provider("cluster", render_yaml_to_directory=target.render_dir)
    kubeconfig = secrets.get("kubeconfig") or target.kubeconfig_file  # the provider takes content or a path
    return Provider("cluster", context=target.context, kubeconfig=kubeconfig)


def external_webhook(webhook: ExternalWebhook | None) -> ExternalWebhookArgs | None:
    if webhook is None:
        return None
    try:
        ca_pem = Path(webhook.ca_file).read_bytes()
    except OSError as error:
        raise pulumi.RunError(f"cluster.lws.webhook.caFile: cannot read {webhook.ca_file}: {error.strerror}") from None
    return ExternalWebhookArgs(webhook.url.rstrip("/"), base64.b64encode(ca_pem).decode())


def controller_options(lws: LwsControllerConfig) -> ControllerOptions:
    return ControllerOptions(
        gang_scheduling=lws.gang_scheduling,
        cert_manager=lws.cert_manager,
        prometheus=lws.prometheus,
        priority_class_name=lws.priority_class_name,
        node_selector=lws.node_selector,
        tolerations=[t.model_dump(exclude_none=True) for t in lws.tolerations],
        resources={str(kind): amounts for kind, amounts in lws.resources.items()},
    )


def storage_args(cluster: Cluster, secrets: dict[str, Any], render: bool) -> ModelStorageArgs:
    storage, namespace = cluster.storage, cluster.namespace
    source: OssVolume | NfsVolume | None = None
    credentials = None
    if storage.oss:
        oss = storage.oss
        secret = oss.credentials_secret or "oss-model-credentials"
        source = OssVolume(oss.bucket, oss.endpoint, oss.path, oss.mount_options, secret, namespace)
        if not oss.credentials_secret:
            missing = [k for k in ("ossAccessKeyId", "ossAccessKeySecret") if k not in secrets]
            if missing:
                raise pulumi.RunError(
                    "cluster.storage.oss.credentialsSecret: not set, so the stack creates the Secret from "
                    f"{' and '.join(missing)}; set them with `pulumi config set --secret <key>`"
                )
            credentials = OssCredentials(secrets["ossAccessKeyId"], secrets["ossAccessKeySecret"])
    elif storage.nfs:
        source = NfsVolume(storage.nfs.server, storage.nfs.path, storage.nfs.access_mode)
    return ModelStorageArgs(namespace, storage.capacity_gi, source, credentials, secrets.get("hfToken"),
                            secrets.get("apiKey"), not render)  # fmt: skip


def size_notice(group: GroupPlan, lws_version: str, where: str) -> str | None:
    """On LWS < 0.7 the group size cannot change in place: the LeaderWorkerSet is replaced, with this notice."""
    if not size_is_immutable(parse_version(lws_version) or ()):
        return None
    return size_change_notice(where, group.name, group.group_size, lws_version, group.startup_seconds)


def deploy(config: StackConfig, secrets: dict[str, Any], plan: StackPlan) -> Deployed:
    cluster = config.cluster
    render = bool(config.target.render_dir)
    opts = pulumi.ResourceOptions(provider=provider(config, secrets))

    lws = cluster.lws
    controller = LwsController(
        "lws",
        LwsControllerArgs(lws.mode.value, lws.version, lws.chart, lws.namespace, lws.image_repository,
                          lws.maintenance_window, external_webhook(lws.webhook), controller_options(lws),
                          controller_chart_values(cluster)),
        opts,
    )  # fmt: skip
    namespace = declare(
        "namespace",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster.namespace}},
        # Deleting a namespace deletes everything in it, model claims included: keep it.
        pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=True)),
    )
    storage = ModelStorage("models", storage_args(cluster, secrets, render), pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(depends_on=[namespace])))  # fmt: skip
    by_name = {d.name: d for d in config.models}
    groups: dict[str, InferenceGroup | StatefulSetGroup] = {}
    operations: dict[str, ModelOperations] = {}
    for group in plan.groups:
        placement = Placement(
            namespace=cluster.namespace,
            claim_name=storage.claim_name,
            mount_path=cluster.storage.mount_path,
            node_selector=cluster.node_selector,
            tolerations=[t.model_dump(exclude_none=True) for t in cluster.tolerations],
            scheduler_queue=cluster.scheduler_queue,
            exclusive_topology=cluster.exclusive_topology,
            nccl_env=cluster.rdma.env() if cluster.rdma else {},
            multus_networks=cluster.rdma.multus_networks if cluster.rdma else None,
            hf_token_secret=storage.hf_token_secret,
            api_key_secret=storage.api_key_secret,
        )
        component = StatefulSetGroup if lws.workload == "statefulset" else InferenceGroup
        workload = component(
            group.name,
            InferenceGroupArgs(
                group,
                placement,
                tuple(cluster.allowed_namespaces) + reaching_namespaces(cluster),
                by_name[group.name].serving.autoscaling is not None,
                size_notice(group, cluster.lws.version, f"models[{list(by_name).index(group.name)}]"),
            ),
            # Depending on the controller's resources: destroy deletes the groups before the controller
            # and its webhooks, which must still be there to finalize them.
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=controller.groups_ready.apply(lambda r: [*r, storage]))
            ),
        )
        groups[group.name] = workload
        operations[group.name] = ModelOperations(
            f"{group.name}-operations",
            operations_args(cluster, by_name[group.name], group, len(plan.groups)),
            workload,
            opts,
        )
    return Deployed(controller, storage, groups, _manifests(config.manifests, controller, opts), operations)


def _manifests(files: list[str], controller: LwsController, opts: pulumi.ResourceOptions) -> ConfigGroup | None:
    """Objects written by hand, applied as they are; like the groups, they go before the controller."""
    if not files:
        return None
    from pulumi_kubernetes.yaml.v2 import ConfigGroup

    return ConfigGroup(
        "manifests",
        files=files,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=controller.ready)),
    )
