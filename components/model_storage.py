"""Model weights on a static, retained volume (OSS through Alibaba's CSI driver, or NFS), and the
credentials to reach them, from Pulumi secrets into Kubernetes Secrets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import PACKAGE
from components.objects import PERSISTENT_VOLUME, PERSISTENT_VOLUME_CLAIM, declare
from plan.manifests import (
    API_KEY_KEY,
    HF_TOKEN_KEY,
    NfsVolume,
    OssVolume,
    model_claim,
    model_volume,
    volume_identity,
)


@dataclass(frozen=True)
class OssCredentials:
    access_key_id: pulumi.Input[str]
    access_key_secret: pulumi.Input[str]


@dataclass(frozen=True)
class ModelStorageArgs:
    namespace: str
    capacity_gi: int
    source: OssVolume | NfsVolume | None
    """None when every model comes from Hugging Face: no volume, only the token's Secret."""
    oss_credentials: OssCredentials | None = None
    """Creates the Secret named in source.secret_name; None when it exists already."""
    hf_token: pulumi.Input[str] | None = None
    api_key: pulumi.Input[str] | None = None
    """The server API key (secret config key apiKey): into a Secret the leaders read it from."""
    render_secrets: bool = True
    """False in render mode: the provider writes Secrets to disk in plaintext, so they are left out
    and must exist in the cluster (see README)."""


class ModelStorage(pulumi.ComponentResource):
    """A PV (reclaim policy Retain) pre-bound to its claim, plus credential Secrets.

    Outputs: `claim_name`, the claim pods mount (None without a volume), `hf_token_secret` and
    `api_key_secret`, the Secrets holding the Hugging Face token and the server API key (None without one).
    """

    claim_name: str | None
    hf_token_secret: str | None
    api_key_secret: str | None

    def __init__(self, name: str, args: ModelStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:storage:ModelStorage", name, None, opts)
        secrets: list[pulumi.Resource] = []
        if isinstance(args.source, OssVolume) and args.oss_credentials:
            secrets += self._secret(
                args.source.secret_name,
                args.source.secret_namespace,
                {"akId": args.oss_credentials.access_key_id, "akSecret": args.oss_credentials.access_key_secret},
                args.render_secrets,
            )
        self.hf_token_secret = f"{name}-hf-token" if args.hf_token is not None else None
        if self.hf_token_secret and args.hf_token is not None:
            secrets += self._secret(
                self.hf_token_secret, args.namespace, {HF_TOKEN_KEY: args.hf_token}, args.render_secrets
            )
        self.api_key_secret = f"{name}-api-key" if args.api_key is not None else None
        if self.api_key_secret and args.api_key is not None:
            secrets += self._secret(
                self.api_key_secret, args.namespace, {API_KEY_KEY: args.api_key}, args.render_secrets
            )

        self.claim_name = None
        if args.source is not None:
            self.claim_name = self._volume(name, args, secrets)
        self.register_outputs({"claim_name": self.claim_name, "hf_token_secret": self.hf_token_secret,
                               "api_key_secret": self.api_key_secret})  # fmt: skip

    def _volume(self, name: str, args: ModelStorageArgs, secrets: list[pulumi.Resource]) -> str:
        assert args.source is not None
        identity = volume_identity(args.namespace, args.capacity_gi, args.source)
        claim_name = f"{name}-{identity}"
        volume = model_volume(
            f"{name}-{args.namespace}-{identity}", args.capacity_gi, args.source, (args.namespace, claim_name)
        )
        pv = declare(
            f"{name}-volume",
            volume,
            # Not retained on delete: a PV left behind keeps the uid of its deleted claim in claimRef, so the claim
            # of the next `pulumi up` would stay Pending on it. Deleting the PV object never touches the data
            # (reclaim policy Retain; a static volume is never deprovisioned), and the next up recreates it,
            # pre-bound to the claim's name, so it binds again.
            pulumi.ResourceOptions(parent=self, depends_on=secrets),
            PERSISTENT_VOLUME,
        )
        claim = model_claim(claim_name, args.namespace, volume)
        declare(f"{name}-claim", claim, pulumi.ResourceOptions(parent=self, depends_on=[pv]), PERSISTENT_VOLUME_CLAIM)
        return str(claim["metadata"]["name"])

    def _secret(
        self, name: str, namespace: str, data: dict[str, pulumi.Input[str]], render: bool
    ) -> list[pulumi.Resource]:
        if not render:
            pulumi.log.warn(
                f"Secret {namespace}/{name} is not rendered: the provider would write its value in plaintext. "
                f"Create it in the cluster (kubectl create secret generic {name} -n {namespace} "
                f"{' '.join(f'--from-literal={k}=...' for k in data)})."
            )
            return []
        manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                    "stringData": data}  # fmt: skip
        secret = declare(f"{name}-secret", manifest, pulumi.ResourceOptions(parent=self))
        return [secret]
