"""Kubernetes objects registered by their type token, with the inputs the provider's typed classes would send.

The typed classes of pulumi-kubernetes (k8s.core.v1.Service, ...) add nothing to a manifest the planner has already
written in full (apiVersion, kind, camelCase fields) but their type token and, for a Secret, secret outputs; and
importing their modules took a fifth of the program's start. The URNs, inputs and state are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from kernel.type_tokens import type_token_of

SECRET_FIELDS = ("data", "stringData")

Kind = tuple[str, str]
"""(apiVersion, kind)"""
SERVICE: Kind = ("v1", "Service")
NETWORK_POLICY: Kind = ("networking.k8s.io/v1", "NetworkPolicy")
PERSISTENT_VOLUME: Kind = ("v1", "PersistentVolume")
PERSISTENT_VOLUME_CLAIM: Kind = ("v1", "PersistentVolumeClaim")


def is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1" and obj.get("kind") == "Secret"


def secret_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """As the provider's Secret class does: a Secret's data is a Pulumi secret, never plaintext in the state."""
    if not is_secret(obj):
        return dict(obj)
    return {k: pulumi.Output.secret(v) if k in SECRET_FIELDS else v for k, v in obj.items()}


def declare(
    name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None, kind: Kind | None = None
) -> pulumi.CustomResource:
    """The object as a resource of its kind, built-in or custom (the add-ons' kinds are in no provider schema).
    `kind`, for a planner manifest of metadata and spec alone, names its apiVersion and kind."""
    if kind is not None:
        manifest = {"apiVersion": kind[0], "kind": kind[1], "metadata": manifest["metadata"], "spec": manifest["spec"]}
    if is_secret(manifest):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_FIELDS)))
    return pulumi.CustomResource(type_token_of(manifest), name, secret_data(manifest), opts)
