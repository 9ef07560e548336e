"""no-plaintext-secrets: credential env vars and OSS volume keys."""

from __future__ import annotations

import pytest
from lws_guard.secrets import check_no_plaintext_secrets, is_credential_name
from lws_guard.settings import Settings

from kernel.type_tokens import type_token_of
from tests.policies.helpers import LWS, Obj, one, set_in

DEFAULT = Settings()


def check(obj: Obj) -> list[str]:
    return check_no_plaintext_secrets(type_token_of(obj), obj, DEFAULT)


@pytest.mark.parametrize(
    "name",
    ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "AWS_SECRET_ACCESS_KEY",
     "VLLM_API_KEY", "DB_PASSWORD", "REDIS_PASSWD", "ALIBABA_CLOUD_AK", "OSS_SK", "hf_token", "GITHUBTOKEN",
     "CLIENT-SECRET", "OPENAI_APIKEY"],
)  # fmt: skip
def test_credential_names(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize(
    "name",
    ["TOKENIZERS_PARALLELISM", "MAX_NUM_BATCHED_TOKENS", "NCCL_IB_HCA", "HF_TOKEN_PATH", "SECRET_NAME",
     "KEYCLOAK_REALM", "LWS_LEADER_ADDRESS", "PWD", "DISK_SIZE", "MONKEY", "SSL_KEY_FILE"],
)  # fmt: skip
def test_harmless_names(name: str) -> None:
    assert not is_credential_name(name)


def test_cce_seed_literal_hugging_face_token_is_denied() -> None:
    messages = check(one("cce_llama405b"))
    assert len(messages) == 2
    assert messages[0] == (
        "LeaderWorkerSet llama-405b: container leader (leader) sets HUGGING_FACE_HUB_TOKEN to a literal value "
        "(30 characters); put it in a Secret and use valueFrom.secretKeyRef"
    )
    assert "container worker (worker)" in messages[1]


def test_secret_key_ref_passes() -> None:
    ref = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    obj = one("cce_llama405b")
    for template in ("leaderTemplate", "workerTemplate"):
        obj["spec"]["leaderWorkerTemplate"][template]["spec"]["containers"][0]["env"] = [ref]
    assert check(obj) == []


def test_references_and_empty_values_pass() -> None:
    env = [{"name": "HF_TOKEN", "value": "$(HUGGING_FACE_HUB_TOKEN)"}, {"name": "API_KEY", "value": ""}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x:1", "env": env}]}}  # fmt: skip
    assert check(pod) == []


def workload(kind: str, api_version: str, pod_spec: Obj) -> Obj:
    template = {"metadata": {}, "spec": pod_spec}
    spec: Obj = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
    if kind == "Pod":
        spec = pod_spec
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [("Pod", "v1"), ("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"), ("DaemonSet", "apps/v1"),
     ("Job", "batch/v1"), ("CronJob", "batch/v1")],
)  # fmt: skip
def test_every_workload_kind_is_checked(kind: str, api_version: str) -> None:
    pod_spec = {
        "initContainers": [{"name": "fetch", "image": "x:1", "env": [{"name": "OSS_ACCESS_KEY_ID", "value": "AK"}]}],
        "containers": [{"name": "app", "image": "x:1", "env": [{"name": "HF_TOKEN", "value": "hf_x"}]}],
    }
    messages = check(workload(kind, api_version, pod_spec))
    assert len(messages) == 2
    assert messages[0].startswith(f"{kind} ns/w: container app")
    assert messages[1].startswith(f"{kind} ns/w: container fetch")
    assert "sets OSS_ACCESS_KEY_ID to a literal value (2 characters)" in messages[1]


def test_oss_volume_of_the_seed_passes() -> None:
    for obj in (one("ack_oss_model_volume", "PersistentVolume"), one("ack_oss_model_volume", "Secret")):
        assert check(obj) == []


def test_oss_volume_with_keys_in_attributes_is_denied() -> None:
    obj = one("ack_oss_model_volume", "PersistentVolume")
    obj = set_in(obj, "spec.csi.volumeAttributes.akId", "LTAI-literal")
    obj = set_in(obj, "spec.csi.volumeAttributes.akSecret", "literal-secret")
    [message] = check(obj)
    assert message.startswith("PersistentVolume llm-model: the OSS volume carries akId, akSecret")
    assert "the Secret inference/oss-credentials it already references" in message


def test_oss_volume_without_secret_ref() -> None:
    obj = one("ack_oss_model_volume", "PersistentVolume")
    del obj["spec"]["csi"]["nodePublishSecretRef"]
    obj = set_in(obj, "spec.csi.volumeAttributes.akSecret", "literal-secret")
    [message] = check(obj)
    assert "spec.csi.nodePublishSecretRef" in message


def test_lws_type_token_without_props_kind() -> None:
    obj = one("cce_llama405b")
    del obj["kind"], obj["apiVersion"]
    assert len(check_no_plaintext_secrets(LWS, obj, DEFAULT)) == 2


# ---- flags, ConfigMaps, inline CSI, and no false hits -----------------------------------------------------------


def pod(container: Obj, volumes: list[Obj] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "x:1", **container}], "volumes": volumes or []}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize(
    ("name", "value"),
    [("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/key.json"), ("HF_HUB_DISABLE_TOKEN", "1"),
     ("KEY_FORMAT", "pem"), ("HF_TOKEN", "$HF_TOKEN"), ("HF_TOKEN", "${HF_TOKEN}"), ("USE_AUTH_TOKEN", "true"),
     ("TOKEN_TYPE", "bearer"), ("MAX_TOKENS", "256"), ("API_KEY_LENGTH", "32"), ("REQUIRE_API_KEY", "yes")],
)  # fmt: skip
def test_paths_booleans_numbers_and_descriptions_are_no_secrets(name: str, value: str) -> None:
    assert check(pod({"env": [{"name": name, "value": value}]})) == []


def test_token_shaped_values_are_secrets_whatever_the_name() -> None:
    [message] = check(pod({"env": [{"name": "EXTRA", "value": "hf_abcdefghijklmnopqrstuvwxyz0123456789"}]}))
    assert "sets EXTRA to a literal value" in message


@pytest.mark.parametrize(
    "command",
    [["vllm", "serve", "m", "--api-key", "sk-0123456789abcdefghijklmn"],
     ["vllm", "serve", "m", "--api-key=token-abc123"],
     ["bash", "-lc", "huggingface-cli download m --token hf_0123456789abcdefghijklmnopqrstuv && vllm serve m"],
     ["sh", "-c", "python3 -m sglang.launch_server --model-path m --api-key 'my literal key'"],
     ["python3", "serve.py", "--hf-token", "hf_0123456789abcdefghijklmnopqrstuv"]],
)  # fmt: skip
def test_credential_flags_with_literal_values_are_denied(command: list[str]) -> None:
    [message] = check(pod({"command": command}))
    assert "container c (pod) passes --" in message and "a literal value" in message


@pytest.mark.parametrize(
    "command",
    [["vllm", "serve", "m", "--api-key", "$(VLLM_API_KEY)"], ["bash", "-c", 'vllm serve m --api-key "$API_KEY"'],
     ["vllm", "serve", "m", "--hf-token", "--trust-remote-code"], ["vllm", "serve", "m", "--tokenizer", "/m/tok"],
     ["vllm", "serve", "m", "--max-num-batched-tokens", "8192", "--ssl-keyfile", "/tls/key.pem"]],
)  # fmt: skip
def test_flags_reading_secrets_from_variables_or_files_pass(command: list[str]) -> None:
    assert check(pod({"command": command})) == []


def test_config_map_data_with_credentials_is_denied() -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "env", "namespace": "ns"},
                  "data": {"HF_TOKEN": "hf_x1", "OPENAI_API_KEY": "abc", "HF_HUB_DISABLE_TOKEN": "1",
                           "MODEL": "Qwen/Qwen3-32B", "SSL_KEY_FILE": "/tls/key"}}  # fmt: skip
    [message] = check(config_map)
    assert message.startswith("ConfigMap ns/env: data HF_TOKEN, OPENAI_API_KEY hold credentials in plaintext")


def test_inline_csi_volume_attributes_with_credentials_are_denied() -> None:
    def volume(attributes: dict[str, str]) -> Obj:
        return {"name": "weights", "csi": {"driver": "ossplugin.csi.alibabacloud.com", "volumeAttributes": attributes}}

    [message] = check(pod({}, [volume({"bucket": "b", "akId": "LTAI5tXyz", "akSecret": "s"})]))
    assert "volume weights (pod) carries akId, akSecret in csi.volumeAttributes" in message
    assert check(pod({}, [volume({"bucket": "b", "otherOpts": "-o allow_other"})])) == []


def test_disaggregated_set_roles_are_checked() -> None:
    role_spec = one("cce_llama405b")["spec"]
    roles = [{"name": "prefill", "spec": role_spec}, {"name": "decode", "spec": role_spec}]
    obj = {"apiVersion": "disaggregatedset.x-k8s.io/v1", "kind": "DisaggregatedSet", "metadata": {"name": "pd"},
           "spec": {"roles": roles}}  # fmt: skip
    messages = check(obj)
    assert len(messages) == 4 and "container leader (decode leader)" in messages[2]
