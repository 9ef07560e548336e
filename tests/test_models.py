"""Models as teams run them multi-node: the catalog, config.json import, MoE with DP/EP, MLA and FP4.

The config.json files under tests/data/config_json are other projects' copies of real checkpoints' configs
(each names its source and the verdict expected); the active parameter counts they are checked against are
the ones verl's FLOPs test derives by hand, so the architecture arithmetic here is compared with someone else's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.load import ConfigError, parse
from kernel.annotations import ModelFacts, model_annotations, read_model_annotations
from kernel.catalog import Dtype, Engine
from kernel.checkpoints import CATALOG, catalog_markdown, checkpoint_by_id, find_checkpoint
from kernel.commands import read_flags
from kernel.hf_config import ConfigJsonError, read_config
from kernel.rules import check_extra_args
from kernel.sizing import (
    Attention,
    dense_weight_bytes,
    estimate_memory,
    expert_weight_bytes,
    kv_bytes_per_token,
    weights_per_gpu,
)
from kernel.units import GIB
from plan.group import GroupPlan, PlanError, Problem, plan_stack
from plan.manifests import plan_summary
from tests.factories import SGLANG_IMAGE, VLLM_IMAGE, Config, set_path

DATA = Path(__file__).parent / "data" / "config_json"
H100 = "NVIDIA-H100-80GB-HBM3"

REQUIRED_CATALOG = [
    "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct", "Qwen/Qwen3-8B", "Qwen/Qwen3-32B", "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct", "deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1",
    "deepseek-ai/DeepSeek-V3.1", "moonshotai/Kimi-K2-Instruct", "zai-org/GLM-4.5", "openai/gpt-oss-20b",
    "openai/gpt-oss-120b", "mistralai/Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x22B-Instruct-v0.1",
]  # fmt: skip


def config_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


def cluster(product: str = H100, per_node: int = 8) -> Config:
    return {
        "name": "gpu",
        "kubernetesVersion": "1.31",
        "gpu": {"product": product, "perNode": per_node},
        "storage": {"nfs": {"server": "nfs.example", "path": "/models"}},
    }


def preset_model(name: str, preset: str, engine: str = "vllm", **serving: Any) -> Config:
    image = VLLM_IMAGE if engine == "vllm" else SGLANG_IMAGE
    return {
        "name": name,
        "model": {"preset": preset, "source": {"path": preset.rsplit("/", 1)[-1]}},
        "serving": {"engine": engine, "image": image, **serving},
    }


def plan_one(model: Config, gpu: str = H100, per_node: int = 8) -> GroupPlan:
    [group] = plan_stack(parse({"cluster": cluster(gpu, per_node), "models": [model]})).groups
    return group


def refusal(model: Config) -> list[Problem]:
    with pytest.raises(PlanError) as caught:
        plan_stack(parse({"cluster": cluster(), "models": [model]}))
    return caught.value.problems


def config_problems(model: Config) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse({"cluster": cluster(), "models": [model]})
    return caught.value.lines


# ---- the catalog -----------------------------------------------------------------------------------------------


def test_the_catalog_has_the_checkpoints_teams_run_multi_node() -> None:
    assert set(REQUIRED_CATALOG) <= {c.hf_id for c in CATALOG}


@pytest.mark.parametrize("checkpoint", CATALOG, ids=lambda c: c.hf_id)
def test_parameters_computed_from_the_architecture_are_within_2_percent_of_the_published_total(checkpoint: Any) -> None:
    assert checkpoint.shape.parameters == pytest.approx(checkpoint.published_parameters, rel=0.02)
    assert checkpoint.config_source == f"https://huggingface.co/{checkpoint.hf_id}/blob/main/config.json"
    assert checkpoint.parameters_source


def test_moe_checkpoints_know_their_experts_and_active_parameters() -> None:
    deepseek = checkpoint_by_id("deepseek-ai/DeepSeek-R1")
    assert deepseek is not None
    shape = deepseek.shape
    assert (shape.routed_experts, shape.shared_experts, shape.experts_per_token) == (256, 1, 8)
    assert shape.active / 1e9 == pytest.approx(37, rel=0.02)  # "37B activated" (model card)
    assert shape.expert_parameters / shape.parameters == pytest.approx(0.975, abs=0.005)
    assert (shape.attention, shape.kv_lora_rank, shape.qk_rope_head_dim) == (Attention.MLA, 512, 64)
    assert shape.dtype is Dtype.FP8
    assert deepseek.context_length == 163840


def test_gpt_oss_keeps_experts_in_mxfp4_and_attention_in_bf16() -> None:
    gpt_oss = checkpoint_by_id("openai/gpt-oss-120b")
    assert gpt_oss is not None
    shape = gpt_oss.shape
    assert (shape.dtype, shape.expert_dtype) == (Dtype.BF16, Dtype.MXFP4)
    # MXFP4: 4 bits plus one 8-bit scale per 32 weights; a bf16 sizing would say 218 GiB, not 61.
    assert expert_weight_bytes(shape) / shape.expert_parameters == pytest.approx(0.53125)
    assert (dense_weight_bytes(shape) + expert_weight_bytes(shape)) / GIB == pytest.approx(60.7, abs=0.5)
    assert (shape.sliding_window, shape.sliding_window_layers) == (128, 18)


@pytest.mark.parametrize(
    ("served", "hf_id", "dtype"),
    [
        ("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1", Dtype.FP8),
        ("/models/Qwen3-235B-A22B-FP8", "Qwen/Qwen3-235B-A22B", Dtype.FP8),
        ("/models/qwen3-235b-a22b-instruct-2507", "Qwen/Qwen3-235B-A22B", Dtype.BF16),
        ("Meta-Llama-3.1-405B-Instruct", "meta-llama/Llama-3.1-405B-Instruct", Dtype.BF16),
        ("/models/Llama-3.3-70B-Instruct-AWQ", "meta-llama/Llama-3.3-70B-Instruct", Dtype.INT4_AWQ),
        ("DEEPSEEK-R1-0528", "deepseek-ai/DeepSeek-R1", Dtype.FP8),
        ("gpt-oss-120b", "openai/gpt-oss-120b", Dtype.BF16),
        ("/models/Kimi-K2-Instruct/", "moonshotai/Kimi-K2-Instruct", Dtype.FP8),
        ("nvidia/DeepSeek-R1-FP4", "deepseek-ai/DeepSeek-R1", Dtype.FP8),
    ],
)
def test_a_served_model_is_found_by_id_path_or_name_with_its_quantization_suffix(
    served: str, hf_id: str, dtype: Dtype
) -> None:
    found = find_checkpoint(served)
    assert found is not None and found.hf_id == hf_id
    assert found.shape.dtype is dtype


def test_an_fp4_copy_of_an_moe_checkpoint_quantizes_its_experts_only() -> None:
    fp4 = find_checkpoint("nvidia/DeepSeek-R1-FP4")
    fp8 = find_checkpoint("deepseek-ai/DeepSeek-R1")
    assert fp4 is not None and fp8 is not None
    assert (fp4.shape.dtype, fp4.shape.expert_dtype) == (Dtype.FP8, Dtype.NVFP4)
    # 4.5 bits instead of 8 for 97.5% of the weights
    assert weights_per_gpu(fp4.shape, 8, 1) / weights_per_gpu(fp8.shape, 8, 1) == pytest.approx(0.57, abs=0.02)


@pytest.mark.parametrize("served", ["/models/house-model", "DeepSeek-R1-Distill-Qwen-32B", "Qwen3-32B-Turbo", ""])
def test_other_models_are_not_mistaken_for_a_catalog_checkpoint(served: str) -> None:
    assert find_checkpoint(served) is None


# ---- config.json ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "active"),
    [("qwen3-8b", 8190427136), ("qwen3-30b-a3b-base", 3352821760), ("deepseek-prover-v2-671b", 37551276032),
     ("gpt-oss-20b", 4186275840)],
)  # fmt: skip
def test_active_parameters_match_verls_hand_derived_counts(name: str, active: int) -> None:
    facts = read_config(config_json(name))
    assert facts.shape.active == pytest.approx(active, rel=0.01)


def test_an_imported_deepseek_config_is_the_catalogs_deepseek() -> None:
    imported = read_config(config_json("deepseek-prover-v2-671b")).shape
    catalog = checkpoint_by_id("deepseek-ai/DeepSeek-V3")
    assert catalog is not None
    assert imported.parameters == pytest.approx(catalog.shape.parameters)
    assert kv_bytes_per_token(imported, 16, 1) == 61 * (512 + 64) * 2


def test_glm_and_mixtral_configs_from_other_projects_read_within_2_percent() -> None:
    assert read_config(config_json("glm-4.5")).shape.parameters == pytest.approx(355e9, rel=0.02)
    mixtral = read_config(config_json("mixtral-8x7b")).shape
    assert mixtral.parameters == pytest.approx(46.7e9, rel=0.01)
    assert mixtral.active == pytest.approx(12.9e9, rel=0.01)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"architectures": ["MambaForCausalLM"]}, "architecture MambaForCausalLM is not one the planner can size"),
        ({"architectures": None}, "architectures is missing"),
        ({"num_hidden_layers": None}, "num_hidden_layers is missing"),
        ({"kv_lora_rank": "512"}, "kv_lora_rank must be a non-negative integer"),
    ],
)
def test_a_config_without_what_sizing_needs_names_the_key(change: dict[str, Any], message: str) -> None:
    raw = config_json("deepseek-prover-v2-671b") | change
    with pytest.raises(ConfigJsonError, match=message):
        read_config({k: v for k, v in raw.items() if v is not None})


# ---- the stack config: preset and configFile --------------------------------------------------------------------


def test_a_preset_fills_the_card_and_written_fields_override_it() -> None:
    model = preset_model("r1", "deepseek-ai/DeepSeek-R1", maxModelLen=32768)
    card = parse({"cluster": cluster(), "models": [model]}).models[0].model
    assert (card.layers, card.attention, card.routed_experts, card.dtype) == (61, "mla", 256, Dtype.FP8)

    overridden = set_path(model, "model.contextLength", 65536)
    card = parse({"cluster": cluster(), "models": [overridden]}).models[0].model
    assert card.context_length == 65536


def test_an_unknown_preset_is_a_config_error_at_its_key() -> None:
    [line] = config_problems(preset_model("x", "deepseek-ai/DeepSeek-R2"))
    assert line.startswith("models[0].model.preset: deepseek-ai/DeepSeek-R2 is not in the catalog; known: ")


def test_config_file_reads_a_local_config_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_json("gpt-oss-20b")))
    model = {"name": "oss", "model": {"configFile": str(path), "source": {"path": "gpt-oss-20b"}},
             "serving": {"engine": "vllm", "image": VLLM_IMAGE, "maxModelLen": 8192}}  # fmt: skip

    group = plan_one(model)
    assert group.shape is not None and group.shape.expert_dtype is Dtype.MXFP4
    assert group.parallelism.gpus == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file: "),
        ("{not json", "is not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
        (json.dumps({"architectures": ["BertModel"], "hidden_size": 768}), "architecture BertModel is not one"),
        (json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096}), "num_attention_heads is missing"),
        (json.dumps([1, 2]), "is not a JSON object"),
    ],
)
def test_bad_config_file_is_one_config_error_at_its_key(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    model = {"name": "m", "model": {"configFile": str(path), "source": {"path": "m"}},
             "serving": {"engine": "vllm", "image": VLLM_IMAGE}}  # fmt: skip

    [line] = config_problems(model)
    assert line.startswith("models[0].model.configFile: ")
    assert message in line


def test_a_card_without_preset_or_config_file_still_names_each_missing_field() -> None:
    model = {"name": "m", "model": {"source": {"path": "m"}, "layers": 4}, "serving": {"engine": "vllm",
             "image": VLLM_IMAGE}}  # fmt: skip
    lines = config_problems(model)
    assert "models[0].model.parametersBillion: required" in lines
    assert "models[0].model.contextLength: required" in lines


# ---- sizing: MoE with EP, MLA, dense unchanged ------------------------------------------------------------------


def test_dense_models_are_sized_the_same_with_any_dp_or_ep() -> None:
    llama = checkpoint_by_id("meta-llama/Llama-3.1-70B-Instruct")
    assert llama is not None

    def estimate(data_parallel: int, expert_parallel: bool) -> object:
        return estimate_memory(
            llama.shape, tensor_parallel=4, pipeline_parallel=1, gpu_bytes=80 * GIB, utilization=0.9,
            max_model_len=8192, kv_sequences=1, data_parallel=data_parallel, expert_parallel=expert_parallel,
        )  # fmt: skip

    assert estimate(1, False) == estimate(4, True)


def test_expert_parallelism_splits_experts_over_tp_times_dp_and_replicates_the_rest() -> None:
    deepseek = checkpoint_by_id("deepseek-ai/DeepSeek-R1")
    assert deepseek is not None
    shape = deepseek.shape
    dense, experts = dense_weight_bytes(shape), expert_weight_bytes(shape)

    assert weights_per_gpu(shape, 1, 1, 16, expert_parallel=True) == pytest.approx(dense + experts / 16)
    assert weights_per_gpu(shape, 8, 1, 2, expert_parallel=True) == pytest.approx(dense / 8 + experts / 16)
    # Without EP every DP replica slices its own copy of the experts over its TP ranks.
    assert weights_per_gpu(shape, 8, 1, 2, expert_parallel=False) == pytest.approx((dense + experts) / 8)


# ---- plans: DeepSeek-R1 on 2 x 8 H100, gpt-oss on one -----------------------------------------------------------


def test_deepseek_r1_is_derived_onto_two_nodes_of_h100() -> None:
    group = plan_one(preset_model("r1", "deepseek-ai/DeepSeek-R1", maxModelLen=32768))
    assert (group.parallelism.tensor, group.parallelism.pipeline, group.group_size) == (8, 2, 2)
    assert group.memory.fits


def test_deepseek_r1_dp16_ep_on_vllm_runs_headless_workers_ranked_by_lws_worker_index() -> None:
    group = plan_one(preset_model("r1", "deepseek-ai/DeepSeek-R1", dataParallel=16, maxModelLen=32768))

    parallelism = group.parallelism
    assert (parallelism.tensor, parallelism.data, parallelism.expert_parallel_size) == (1, 16, 16)
    assert (group.group_size, parallelism.gpus_per_pod) == (2, 8)
    leader, worker = group.leader_command[-1], group.worker_command[-1]
    for script in (leader, worker):
        assert "exec vllm serve /models/DeepSeek-R1" in script
        assert "--data-parallel-size 16 --data-parallel-size-local 8 --data-parallel-rpc-port 13345" in script
        assert "--enable-expert-parallel" in script and "ray" not in script
    assert "--headless" not in leader and "--port 8000" in leader
    assert leader.endswith('--data-parallel-address "$(hostname -i)"')  # the DP master binds its own IP
    assert worker.startswith("until getent hosts $(LWS_LEADER_ADDRESS) >/dev/null; do")
    assert worker.endswith(
        "--data-parallel-address $(LWS_LEADER_ADDRESS) --data-parallel-start-rank $((LWS_WORKER_INDEX * 8))"
    )
    assert "--headless" in worker
    flags = read_flags(group.worker_command)
    assert (flags.engine, flags.values["data"], flags.values["model"]) == (Engine.VLLM, "16", "/models/DeepSeek-R1")


def test_deepseek_r1_on_sglang_spans_tp_over_all_gpus_with_dp_attention() -> None:
    model = preset_model("r1", "deepseek-ai/DeepSeek-R1", "sglang", tensorParallel=16, dataParallel=16,
                         maxModelLen=32768)  # fmt: skip
    group = plan_one(model)

    assert (group.parallelism.gpus, group.group_size, group.parallelism.attention_tensor) == (16, 2, 1)
    command = list(group.leader_command)
    assert command[command.index("--tp") + 1] == "16" and command[command.index("--dp-size") + 1] == "16"
    assert "--enable-dp-attention" in command and "--ep-size" in command
    assert command[command.index("--node-rank") + 1] == "$(LWS_WORKER_INDEX)"


def test_sglang_dp_that_does_not_divide_tp_is_refused() -> None:
    model = preset_model("r1", "deepseek-ai/DeepSeek-R1", "sglang", tensorParallel=16, dataParallel=3)
    messages = [p.message for p in refusal(model) if p.key == "models[0].serving.dataParallel"]
    assert any("--dp-size=3 does not divide --tp=16" in m for m in messages)


def test_vllm_dp_ranks_must_fit_inside_a_pod() -> None:
    model = preset_model("r1", "deepseek-ai/DeepSeek-R1", tensorParallel=16, dataParallel=2, maxModelLen=8192)
    [problem] = [p for p in refusal(model) if p.key == "models[0].serving.dataParallel"]
    assert "TP=16 x PP=1 = 16 GPUs does not fit evenly in a pod of 8 GPUs" in problem.message


def test_gpt_oss_120b_fits_one_h100() -> None:
    model = preset_model("oss", "openai/gpt-oss-120b", gpuMemoryUtilization=0.95, maxModelLen=32768)
    model["serving"]["image"] = "vllm/vllm-openai:v0.10.1"
    group = plan_one(model)
    assert (group.parallelism.gpus, group.group_size) == (1, 1)
    assert group.memory.weights / GIB == pytest.approx(60.7, abs=0.5)


def test_the_plan_output_has_dp_ep_kv_bytes_per_token_and_parameter_counts() -> None:
    group = plan_one(preset_model("r1", "deepseek-ai/DeepSeek-R1", dataParallel=16, maxModelLen=32768))
    summary = plan_summary(group)
    assert (summary["dataParallel"], summary["expertParallel"]) == (16, 16)
    assert summary["kvBytesPerToken"] == 61 * 576 * 2
    assert summary["parametersBillion"] == pytest.approx(671, rel=0.01)
    assert summary["activeParametersBillion"] == pytest.approx(37.5, rel=0.01)


def test_flags_the_plan_sets_for_dp_and_ep_are_refused_in_extra_args() -> None:
    for flag in ("--enable-expert-parallel", "--data-parallel-start-rank=3", "--headless"):
        assert check_extra_args(Engine.VLLM, [flag]), flag
    assert check_extra_args(Engine.SGLANG, ["--enable-dp-attention"])


def test_expert_parallel_on_a_dense_model_is_only_advised_against() -> None:
    model = preset_model("llama", "meta-llama/Llama-3.1-8B-Instruct", expertParallel=True, maxModelLen=8192)
    stack = plan_stack(parse({"cluster": cluster(), "models": [model]}))
    assert [p.key for p in stack.advisories] == ["models[0].serving.expertParallel"]


# ---- annotations ------------------------------------------------------------------------------------------------


def test_annotations_carry_the_moe_and_mla_facts_back_to_the_pack() -> None:
    deepseek = checkpoint_by_id("deepseek-ai/DeepSeek-R1")
    assert deepseek is not None
    annotations = model_annotations(ModelFacts(deepseek.shape, 32768, 1))

    facts = read_model_annotations(annotations)
    assert facts is not None
    assert facts.shape.attention is Attention.MLA
    assert facts.shape.expert_parameters == pytest.approx(deepseek.shape.expert_parameters, rel=1e-9)
    assert kv_bytes_per_token(facts.shape, 8, 1) == kv_bytes_per_token(deepseek.shape, 8, 1)


def test_annotations_without_the_moe_keys_read_as_a_dense_model() -> None:
    deepseek = checkpoint_by_id("deepseek-ai/DeepSeek-R1")
    assert deepseek is not None
    annotations = model_annotations(ModelFacts(deepseek.shape, 32768, 1))
    old = {k: v for k, v in annotations.items() if not k.endswith(("-experts", "-parameters", "kv-lora-rank"))}
    old["inference.lws.dev/attention"] = "mla"  # MLA without its latent size: fall back to per-head KV

    facts = read_model_annotations(old)
    assert facts is not None
    assert (facts.shape.is_moe, facts.shape.attention) == (False, Attention.GQA)


def test_the_readme_lists_the_catalog_as_printed() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("<!-- model-catalog:begin -->") : readme.index("<!-- model-catalog:end -->")]
    assert catalog_markdown() in section, "regenerate it: python -m kernel.checkpoints"


def test_sglang_dp_attention_for_a_dense_model_is_advised_against() -> None:
    model = preset_model("llama", "meta-llama/Llama-3.1-8B-Instruct", "sglang", tensorParallel=2, dataParallel=2,
                         maxModelLen=8192)  # fmt: skip
    stack = plan_stack(parse({"cluster": cluster(), "models": [model]}))
    assert [p.key for p in stack.advisories] == ["models[0].serving.dataParallel"]
