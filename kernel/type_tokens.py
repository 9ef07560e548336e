"""Pulumi type tokens of Kubernetes objects, as the Kubernetes provider names them: `kubernetes:<group>/<version>:
<Kind>`, the core group spelled `core` (kubernetes:core/v1:Pod). The program registers objects by these tokens and
the policy pack recognizes objects by them, so both derive them here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final


def type_token(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


def type_token_of(obj: Mapping[str, Any]) -> str:
    """The token of a manifest (its apiVersion and kind)."""
    return type_token(str(obj["apiVersion"]), str(obj["kind"]))


CRD_TYPE: Final = type_token("apiextensions.k8s.io/v1", "CustomResourceDefinition")
