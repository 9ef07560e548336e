"""The stack config as the user's API: what parses, and how every mistake is reported.

Each error line must name the key as `pulumi config set --path` takes it, so the user can paste it;
and a config with several mistakes must list all of them at once, not one per `pulumi up`.
"""

from __future__ import annotations

from typing import Any

import pytest

from config.load import ConfigError, config_key, parse, plaintext_secrets
from config.model import SECRET_KEYS, LwsMode
from kernel.catalog import Dtype, Engine
from tests.factories import (
    ack_qwen3_32b,
    cce_llama405b,
    delete_path,
    set_path,
    tiny_model,
)


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert str(caught.value) == "\n".join(caught.value.lines)
    return caught.value.lines


def only_problem(raw: dict[str, Any]) -> str:
    lines = problems(raw)
    assert len(lines) == 1, lines
    return lines[0]


# ---- valid configs -------------------------------------------------------------------------------


def test_cce_example_parses_with_its_numbers() -> None:
    config = parse(cce_llama405b())

    assert config.cluster.gpu.product == "NVIDIA-H100-80GB-HBM3"
    assert config.cluster.gpu.per_node == 8
    assert config.cluster.lws.mode is LwsMode.MANAGED
    assert config.cluster.lws.version_tuple == (0, 6, 1)
    assert config.cluster.kubernetes_version_tuple == (1, 31)
    [llama] = config.models
    assert llama.model.source.hugging_face == "meta-llama/Llama-3.1-405B-Instruct"
    assert llama.model.source.path is None
    assert llama.model.resolved_head_dim == 16384 // 128
    assert llama.serving.engine is Engine.VLLM
    assert (llama.serving.replicas, llama.serving.tensor_parallel, llama.serving.pipeline_parallel) == (2, 8, 2)
    assert llama.serving.gpus_per_pod == 8


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_ack_example_parses_for_both_engines(engine: str) -> None:
    config = parse(ack_qwen3_32b(engine))

    [qwen] = config.models
    assert qwen.serving.engine is Engine(engine)
    assert qwen.model.resolved_head_dim == 128  # headDim given: Qwen3's 64 x 128 is not its hidden 5120
    assert qwen.model.dtype is Dtype.BF16
    assert config.cluster.storage.oss is not None
    assert config.cluster.storage.oss.bucket == "llm-models"
    assert config.cluster.storage.nfs is None


def test_defaults_a_user_relies_on() -> None:
    config = parse(tiny_model())

    assert config.cluster.namespace == "inference"
    assert config.cluster.lws.namespace == "lws-system"
    assert config.cluster.lws.mode is LwsMode.INSTALL
    assert config.models[0].serving.port == 8000
    assert config.models[0].serving.max_num_seqs == 256
    assert config.models[0].serving.kv_cache_sequences == 1


@pytest.mark.parametrize(("engine", "fraction"), [("vllm", 0.90), ("sglang", 0.88)])
def test_memory_fraction_defaults_per_engine(engine: str, fraction: float) -> None:
    assert parse(tiny_model(engine)).models[0].serving.memory_fraction == fraction


def test_memory_fraction_uses_the_engines_own_key() -> None:
    vllm = set_path(tiny_model("vllm"), "models[0].serving.gpuMemoryUtilization", 0.8)
    sglang = set_path(tiny_model("sglang"), "models[0].serving.memFractionStatic", 0.7)

    assert parse(vllm).models[0].serving.memory_fraction == 0.8
    assert parse(sglang).models[0].serving.memory_fraction == 0.7


def test_head_dim_defaults_to_hidden_over_heads() -> None:
    config = parse(delete_path(ack_qwen3_32b(), "models[0].model.headDim"))

    assert config.models[0].model.resolved_head_dim == 5120 // 64


def test_a_stack_without_models_is_valid() -> None:
    assert parse(delete_path(tiny_model(), "models")).models == []


def test_version_accepts_a_v_prefix() -> None:
    config = parse(set_path(tiny_model(), "cluster.lws.version", "v0.7.1"))

    assert config.cluster.lws.version_tuple == (0, 7, 1)


def test_config_is_immutable() -> None:
    config = parse(tiny_model())

    with pytest.raises(ValueError, match="frozen"):
        config.cluster.gpu.per_node = 2  # type: ignore[misc]


# ---- each kind of mistake, located at its key -------------------------------------------------------


def test_missing_cluster_is_reported_alone() -> None:
    assert only_problem(delete_path(tiny_model(), "cluster")).startswith("cluster: required")


def test_unknown_key_names_the_misspelled_key() -> None:
    raw = set_path(tiny_model(), "models[0].serving.tensorParalel", 2)

    line = only_problem(raw)
    assert line.startswith("models[0].serving.tensorParalel: unknown key")
    assert "camelCase" in line


def test_storage_throughput_below_1_mib_per_second_is_refused() -> None:
    """Startup budgets divide by it: a denormal throughput would overflow them instead of being reported."""
    raw = set_path(tiny_model(), "cluster.storage.throughputMibPerSecond", 1e-320)

    assert only_problem(raw).startswith("cluster.storage.throughputMibPerSecond: ")


def test_snake_case_key_is_unknown() -> None:
    raw = set_path(tiny_model(), "cluster.gpu.per_node", 4)

    assert only_problem(raw).startswith("cluster.gpu.per_node: unknown key")


def test_wrong_type_names_the_key_and_the_value() -> None:
    raw = set_path(tiny_model(), "models[0].serving.tensorParallel", "two")

    line = only_problem(raw)
    assert line.startswith("models[0].serving.tensorParallel: ")
    assert "integer" in line
    assert "'two'" in line


def test_missing_required_key() -> None:
    raw = delete_path(tiny_model(), "models[0].model.layers")

    assert only_problem(raw) == "models[0].model.layers: required"


def test_missing_required_keys_in_a_list_element() -> None:
    raw = set_path(tiny_model(), "models[1]", {"name": "second"})

    lines = problems(raw)
    assert "models[1].model: required" in lines
    assert "models[1].serving: required" in lines


def test_out_of_range_number_names_the_key() -> None:
    raw = set_path(tiny_model(), "cluster.gpu.perNode", 0)

    line = only_problem(raw)
    assert line.startswith("cluster.gpu.perNode: ")
    assert "greater than or equal to 1" in line


def test_oss_and_nfs_together_are_refused() -> None:
    raw = set_path(ack_qwen3_32b(), "cluster.storage.nfs", {"server": "10.0.0.2", "path": "/models"})

    line = only_problem(raw)
    assert line.startswith("cluster.storage: ")
    assert "either oss or nfs" in line


@pytest.mark.parametrize(
    "source",
    [{"path": "Qwen3-32B", "huggingFace": "Qwen/Qwen3-32B"}, {}],
    ids=["both", "neither"],
)
def test_model_source_needs_exactly_one_of_path_or_hugging_face(source: dict[str, str]) -> None:
    raw = set_path(ack_qwen3_32b(), "models[0].model.source", source)

    line = only_problem(raw)
    assert line.startswith("models[0].model.source: ")
    assert "exactly one of path or huggingFace" in line


def test_kv_heads_above_attention_heads_are_refused() -> None:
    raw = set_path(ack_qwen3_32b(), "models[0].model.kvHeads", 128)

    line = only_problem(raw)
    assert line.startswith("models[0].model: ")
    assert "kvHeads (128) exceeds attentionHeads (64)" in line


def test_head_dim_or_hidden_size_is_required() -> None:
    raw = delete_path(delete_path(ack_qwen3_32b(), "models[0].model.headDim"), "models[0].model.hiddenSize")

    line = only_problem(raw)
    assert line.startswith("models[0].model: ")
    assert "headDim or hiddenSize" in line


def test_object_level_problems_do_not_dump_the_whole_object() -> None:
    """A model validator's message names its fields; echoing the model card back buries it."""
    raw = set_path(ack_qwen3_32b(), "models[0].model.kvHeads", 128)

    line = only_problem(raw)
    assert "parametersBillion" not in line
    assert len(line) < 200, line


def test_duplicate_model_names_are_refused_naming_the_name() -> None:
    raw = ack_qwen3_32b()
    raw["models"].append(raw["models"][0])

    line = only_problem(raw)
    assert line.startswith("models: ")
    assert "unique" in line
    assert "qwen3-32b" in line


def test_gpu_memory_utilization_on_sglang_points_to_mem_fraction_static() -> None:
    raw = set_path(ack_qwen3_32b("sglang"), "models[0].serving.gpuMemoryUtilization", 0.9)

    line = only_problem(raw)
    assert line.startswith("models[0].serving: ")
    assert "gpuMemoryUtilization is a vLLM setting" in line
    assert "memFractionStatic" in line


def test_mem_fraction_static_on_vllm_points_to_gpu_memory_utilization() -> None:
    raw = set_path(ack_qwen3_32b("vllm"), "models[0].serving.memFractionStatic", 0.85)

    line = only_problem(raw)
    assert line.startswith("models[0].serving: ")
    assert "vLLM uses gpuMemoryUtilization" in line


def test_unknown_engine_is_refused() -> None:
    raw = set_path(tiny_model(), "models[0].serving.engine", "tgi")

    line = only_problem(raw)
    assert line.startswith("models[0].serving.engine: ")
    assert "'vllm'" in line
    assert "'sglang'" in line


def test_model_name_must_be_a_dns_label() -> None:
    raw = set_path(tiny_model(), "models[0].name", "Qwen3_32B")

    assert only_problem(raw).startswith("models[0].name: ")


@pytest.mark.parametrize("version", ["latest", "1", "1.31.x", "main"])
def test_versions_must_be_numeric(version: str) -> None:
    raw = set_path(tiny_model(), "cluster.kubernetesVersion", version)

    assert only_problem(raw).startswith("cluster.kubernetesVersion: ")


def test_autoscaling_bounds() -> None:
    raw = set_path(tiny_model(), "models[0].serving.autoscaling", {"minReplicas": 3, "maxReplicas": 2})

    line = only_problem(raw)
    assert line.startswith("models[0].serving.autoscaling: ")
    assert "minReplicas (3) exceeds maxReplicas (2)" in line


def test_render_dir_and_context_are_exclusive() -> None:
    raw = set_path(tiny_model(), "target", {"renderDir": "out", "context": "prod"})

    assert only_problem(raw).startswith("target: ")


def test_every_problem_is_listed_at_once() -> None:
    raw = tiny_model()
    raw = set_path(raw, "cluster.gpu.perNode", -1)  # out of range
    raw = set_path(raw, "models[0].model.layers", "many")  # wrong type
    raw = set_path(raw, "models[0].serving.tensorParalel", 2)  # unknown key

    lines = problems(raw)
    assert len(lines) == 3, lines
    assert sorted(line.split(":")[0] for line in lines) == [
        "cluster.gpu.perNode",
        "models[0].model.layers",
        "models[0].serving.tensorParalel",
    ]


def test_problems_in_different_models_are_listed_with_their_index() -> None:
    raw = tiny_model()
    second = {**raw["models"][0], "name": "second"}
    raw["models"].append(second)
    raw = set_path(raw, "models[0].serving.port", 0)
    raw = set_path(raw, "models[1].serving.port", 70000)

    lines = problems(raw)
    assert [line.split(":")[0] for line in lines] == ["models[0].serving.port", "models[1].serving.port"]


# ---- config_key ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "key"),
    [
        (("models", 0, "serving", "tensorParallel"), "models[0].serving.tensorParallel"),
        (("cluster", "gpu", "product"), "cluster.gpu.product"),
        (("cluster", "tolerations", 2, "effect"), "cluster.tolerations[2].effect"),
        (("models",), "models"),
        ((), ""),
    ],
)
def test_config_key_is_the_path_pulumi_config_set_takes(location: tuple[int | str, ...], key: str) -> None:
    assert config_key(location) == key


def test_config_key_quotes_map_keys_pulumi_cannot_read_as_a_path() -> None:
    """`pulumi config set --path` reads `a.b` as nesting; a label key with dots or slashes needs ["..."]."""
    location = ("cluster", "nodeSelector", "nvidia.com/gpu.product")

    assert config_key(location) == 'cluster.nodeSelector["nvidia.com/gpu.product"]'


def test_node_selector_value_problem_names_a_usable_key() -> None:
    raw = set_path(tiny_model(), "cluster.nodeSelector", {"nvidia.com/gpu.product": 5})

    assert only_problem(raw).startswith('cluster.nodeSelector["nvidia.com/gpu.product"]: ')


# ---- secrets -------------------------------------------------------------------------------------


def test_plaintext_secret_keys_are_reported_with_the_fix() -> None:
    lines = plaintext_secrets({"hfToken": False, "kubeconfig": True})

    assert len(lines) == 1
    assert lines[0].startswith("hfToken: ")
    assert "pulumi config set --secret hfToken" in lines[0]


def test_absent_or_encrypted_secrets_are_fine() -> None:
    assert plaintext_secrets({}) == []
    assert plaintext_secrets(dict.fromkeys(SECRET_KEYS, True)) == []


def test_every_secret_key_is_checked() -> None:
    lines = plaintext_secrets(dict.fromkeys(SECRET_KEYS, False))

    assert [line.split(":")[0] for line in lines] == list(SECRET_KEYS)
    assert {"kubeconfig", "hfToken", "ossAccessKeyId", "ossAccessKeySecret"} <= set(SECRET_KEYS)


def test_unrelated_keys_are_not_secrets() -> None:
    assert plaintext_secrets({"cluster": False, "models": False}) == []


def test_hand_written_manifests_must_exist(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "group.yaml").write_text("kind: LeaderWorkerSet\n")
    raw = tiny_model()
    raw["manifests"] = ["group.yaml"]
    assert parse(raw).manifests == ["group.yaml"]

    raw["manifests"] = ["group.yaml", "missing.yaml"]
    line = only_problem(raw)
    assert line.startswith("manifests: ") and "missing.yaml" in line and "group.yaml," not in line
