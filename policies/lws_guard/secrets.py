"""no-plaintext-secrets: credentials reach pods through Secrets, never as literals in a spec.

A literal is in the program, the state file, the rendered YAML and `kubectl get -o yaml` of everyone who
may read the workload (https://kubernetes.io/docs/concepts/security/secrets-good-practices/). Where:
* env of every container (init and ephemeral too) of Pods, Deployments, StatefulSets, DaemonSets,
  ReplicaSets, Jobs, CronJobs, LeaderWorkerSets and DisaggregatedSet roles;
* command and args: the value of a credential flag (--api-key, --hf-token, --token, --password, ...);
* ConfigMaps: data entries (which envFrom turns into env vars) with a credential name;
* CSI volumes, inline in a pod or in a PersistentVolume: credential keys in volumeAttributes (the OSS
  driver takes its AccessKey only from nodePublishSecretRef).

The matching rule, for a name (env var, flag, data key, attribute) and its literal value:
1. the name is a credential's: one of its words (split at _ - . and camelCase) is TOKEN, SECRET, PASSWORD,
   PASSWD, KEY, APIKEY, AK, SK, AKID, AKSECRET, ACCESSKEY, SECRETKEY, PRIVATEKEY, CREDENTIAL(S),
   PASSPHRASE, or ends in TOKEN/SECRET/PASSWORD/PASSWD/APIKEY/ACCESSKEY/SECRETKEY; unless its last word
   says it points at or describes one (PATH, FILE, DIR, NAME, REF, ENDPOINT, URL, FORMAT, TYPE, MODE,
   SIZE, LENGTH, ALGORITHM) or a word toggles a feature (DISABLE, ENABLE, USE, SKIP, REQUIRE);
2. and the value could be one: not empty, not a reference to a variable ($(X), $X, ${X}), not a path
   (/..., ./..., ~/...), not a boolean or a number;
3. or, whatever the name, the value has the shape of a known token: hf_..., sk-..., ghp_/github_pat_...,
   AKIA... (AWS), LTAI... (Alibaba Cloud).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from kernel.shell import shell_script, simple_commands
from lws_guard import manifest
from lws_guard.settings import Settings

OSS_CSI_DRIVER = "ossplugin.csi.alibabacloud.com"
_OSS_KEYS = {"akid", "aksecret", "accesskeyid", "accesskeysecret"}

_CREDENTIAL_WORDS = {
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "APIKEY", "AK", "SK", "AKID", "AKSECRET",
    "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "CREDENTIAL", "CREDENTIALS", "PASSPHRASE",
}  # fmt: skip
_CREDENTIAL_ENDINGS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "ACCESSKEY", "SECRETKEY")
_REFERENCE_WORDS = {
    "PATH", "FILE", "DIR", "NAME", "REF", "ENDPOINT", "URL", "FORMAT", "TYPE", "MODE", "SIZE", "LENGTH",
    "ALGORITHM",
}  # fmt: skip
_TOGGLE_WORDS = {"DISABLE", "DISABLED", "ENABLE", "ENABLED", "USE", "SKIP", "REQUIRE", "REQUIRED"}
_VARIABLE = re.compile(r"^\$(\([A-Za-z_][A-Za-z0-9_]*\)|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$")
_BOOLEAN_OR_NUMBER = re.compile(r"^(true|false|yes|no|on|off|none|null|[-+]?[0-9]+(\.[0-9]+)?)$", re.IGNORECASE)
_TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|AKIA[0-9A-Z]{16}|LTAI[0-9A-Za-z]{12,})(?![A-Za-z0-9])"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_credential_name(name: str) -> bool:
    words = [w for w in re.split(r"[_\-.]+", _CAMEL.sub("_", name.lstrip("-")).upper()) if w]
    if not words or words[-1] in _REFERENCE_WORDS or any(w in _TOGGLE_WORDS for w in words):
        return False
    return any(w in _CREDENTIAL_WORDS or w.endswith(_CREDENTIAL_ENDINGS) for w in words)


def could_be_secret(value: str) -> bool:
    stripped = value.strip()
    return not (
        not stripped
        or _VARIABLE.match(stripped)
        or stripped.startswith(("/", "./", "../", "~/"))
        or _BOOLEAN_OR_NUMBER.match(stripped)
    )


def has_token_shape(value: str) -> bool:
    return bool(_TOKEN_SHAPES.search(value))


def is_plaintext_secret(name: str, value: str) -> bool:
    return (is_credential_name(name) and could_be_secret(value)) or has_token_shape(value)


def check_no_plaintext_secrets(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    kind = manifest.kind_of(resource_type, props)
    who = manifest.display(kind or resource_type, props, name)
    messages = []
    for item in manifest.workload_containers(resource_type, props, init=True):
        for variable, value in manifest.env_literals(item.container):
            if is_plaintext_secret(variable, value):
                messages.append(
                    f"{who}: container {item.label} sets {variable} to a literal value ({len(value)} characters); "
                    "put it in a Secret and use valueFrom.secretKeyRef"
                )
        messages += [f"{who}: container {item.label} {found}" for found in _command_secrets(item.container)]
    seen_volumes: set[int] = set()
    for pod in manifest.pod_specs(resource_type, props):
        if id(pod.spec) in seen_volumes:
            continue
        seen_volumes.add(id(pod.spec))
        for volume_name, volume in manifest.volumes(pod.spec).items():
            keys = _csi_secret_keys(manifest.mapping(volume.get("csi")))
            if keys:
                messages.append(
                    f"{who}: volume {volume_name} ({pod.role}) carries {', '.join(keys)} in csi.volumeAttributes, "
                    "in plaintext; reference a Secret with csi.nodePublishSecretRef instead"
                )
    if kind == "PersistentVolume":
        oss = _oss_volume(who, props)
        csi = manifest.mapping(manifest.dig(props, "spec", "csi"))
        keys = _csi_secret_keys(csi)
        if not oss and keys:
            oss = [
                f"{who}: the CSI volume carries {', '.join(keys)} in spec.csi.volumeAttributes, in plaintext; "
                "reference a Secret with spec.csi.nodePublishSecretRef instead"
            ]
        messages += oss
    if kind == "ConfigMap":
        messages += _config_map(who, props)
    return messages


def _command_secrets(container: Mapping[str, Any]) -> list[str]:
    """Credential flags with literal values, and token-shaped words, in command and args."""
    words = _words(tuple(manifest.command(container)))
    found = []
    values_of_flags: set[int] = set()
    for index, word in enumerate(words):
        flag, eq, inline = word.partition("=")
        if flag.startswith("--") and is_credential_name(flag):
            value = inline if eq else (words[index + 1] if index + 1 < len(words) else "")
            if not value.startswith("-") and could_be_secret(value):
                found.append(
                    f"passes {flag} a literal value ({len(value)} characters) in its command; read it "
                    "from an env var set from a Secret (valueFrom.secretKeyRef), e.g. $(API_KEY)"
                )
                values_of_flags.add(index + 1)
                continue
        if has_token_shape(word) and index not in values_of_flags:
            found.append(
                "has a token-shaped literal in its command (hf_..., sk-..., AKIA..., ...); read it from an "
                "env var set from a Secret"
            )
    return list(dict.fromkeys(found))


@lru_cache(maxsize=2048)
def _words(command: tuple[str, ...]) -> tuple[str, ...]:
    """The words of a command, a shell script's split as the shell would (memoized: groups repeat commands)."""
    script = shell_script(command)
    return tuple(w for segment in simple_commands(script) for w in segment) if script is not None else command


def _csi_secret_keys(csi: Mapping[str, Any]) -> list[str]:
    attributes = manifest.mapping(csi.get("volumeAttributes"))
    return sorted(
        str(key)
        for key, value in attributes.items()
        if (str(key).lower() in _OSS_KEYS or is_credential_name(str(key)))
        and could_be_secret(manifest.text(value) or "")
    )


def _config_map(who: str, props: Mapping[str, Any]) -> list[str]:
    data = manifest.mapping(manifest.dig(props, "data"))
    keys = sorted(str(k) for k, v in data.items() if is_plaintext_secret(str(k), manifest.text(v) or ""))
    if not keys:
        return []
    return [
        f"{who}: data {', '.join(keys)} hold credentials in plaintext (a ConfigMap is readable by anyone who may "
        "read the namespace's config, and envFrom turns it into env vars); move them to a Secret"
    ]


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
