"""no-plaintext-secrets: credentials reach pods through Secrets, never as literals in a spec.

* An env var whose name says credential (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, *_SECRET*, *PASSWORD*,
  *PASSWD*, *_KEY*, AK/SK, OSS_ACCESS_KEY_ID, ...) must use valueFrom (secretKeyRef), not value, in
  every container of Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and
  LeaderWorkerSets (leader and worker templates). A literal is in the program, the state file, the
  rendered YAML and `kubectl get -o yaml` of everyone who may read the workload.
* An OSS CSI PersistentVolume (driver ossplugin.csi.alibabacloud.com) takes its AccessKey only from
  nodePublishSecretRef, never akId/akSecret in volumeAttributes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lws_guard import manifest
from lws_guard.settings import Settings

OSS_CSI_DRIVER = "ossplugin.csi.alibabacloud.com"
_OSS_KEYS = {"akid", "aksecret", "accesskeyid", "accesskeysecret"}

# Words of an env var name (split at _ - .) that mark a credential.
_CREDENTIAL_WORDS = {
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "APIKEY", "AK", "SK", "AKID", "AKSECRET",
    "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "CREDENTIAL", "CREDENTIALS", "PASSPHRASE",
}  # fmt: skip
# Endings of a single word that mark one too: HFTOKEN, CLIENTSECRET, DBPASSWORD.
_CREDENTIAL_ENDINGS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "ACCESSKEY", "SECRETKEY")
# A last word that makes the variable a reference to a credential, not the credential itself.
_REFERENCE_WORDS = {"PATH", "FILE", "DIR", "NAME", "REF", "ENDPOINT", "URL"}
# A value that only points at another variable ($(HF_TOKEN)) carries no secret of its own.
_VARIABLE_REFERENCE = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_]*\)$")


def is_credential_name(name: str) -> bool:
    words = [w for w in re.split(r"[_\-.]+", name.upper()) if w]
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    return any(w in _CREDENTIAL_WORDS or w.endswith(_CREDENTIAL_ENDINGS) for w in words)


def check_no_plaintext_secrets(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    kind = manifest.kind_of(resource_type, props)
    who = manifest.display(kind or resource_type, props, name)
    messages = []
    for pod in manifest.pod_specs(resource_type, props):
        for container in manifest.containers(pod.spec, init=True):
            for variable, value in manifest.env_literals(container):
                if not value or _VARIABLE_REFERENCE.match(value) or not is_credential_name(variable):
                    continue
                messages.append(
                    f"{who}: container {manifest.container_name(container)} ({pod.role}) sets {variable} to a "
                    f"literal value ({len(value)} characters); put it in a Secret and use "
                    "valueFrom.secretKeyRef"
                )
    if kind == "PersistentVolume":
        messages += _oss_volume(who, props)
    return messages


def _oss_volume(who: str, props: Mapping[str, Any]) -> list[str]:
    csi = manifest.mapping(manifest.dig(props, "spec", "csi"))
    if manifest.text(csi.get("driver")) != OSS_CSI_DRIVER:
        return []
    attributes = manifest.mapping(csi.get("volumeAttributes"))
    literal = sorted(str(key) for key in attributes if str(key).lower() in _OSS_KEYS)
    if not literal:
        return []
    ref = manifest.mapping(csi.get("nodePublishSecretRef"))
    where = (
        f"the Secret {manifest.text(ref.get('namespace')) or '<namespace>'}/{manifest.text(ref.get('name'))} "
        "it already references"
        if manifest.text(ref.get("name"))
        else "a Secret referenced by spec.csi.nodePublishSecretRef"
    )
    return [
        f"{who}: the OSS volume carries {', '.join(literal)} in spec.csi.volumeAttributes, in plaintext; "
        f"keep the AccessKey only in {where} (keys akId and akSecret)"
    ]
