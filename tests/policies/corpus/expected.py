"""The verdict the pack must give on each corpus deployment: messages per policy, and why.

Every file in this directory is a real LeaderWorkerSet (or DisaggregatedSet) deployment re-expressed in our
own words, its source on the first line; the `broken_*` ones take a real deployment and break one thing on
purpose (said in their header). A policy missing from a row must report nothing. tests/policies/
test_policy_corpus.py runs every file through every policy, directly and through the SDK wrappers, and fails
on any difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    sound: bool
    """No mandatory policy may deny it (a false denial would show); broken ones must be denied."""
    messages: dict[str, int] = field(default_factory=dict)
    why: str = ""
    gpu: str = ""
    """The GPU its source runs it on (the policy config's defaultGpu), when not the pack's default."""


H200 = "NVIDIA-H200"  # llm-d's wide-EP guide: "requires 32 Nvidia H200 or B200 GPUs"


EXPECTED: dict[str, Verdict] = {
    # ---- sound: nothing mandatory fires ----------------------------------------------------------------
    "lws_vllm_gpu_ray": Verdict(
        True,
        {},
        "TP8 x PP2 = 2 pods x 8 GPUs, Ray joins them, 15Gi shm in 1124Gi, "
        "pinned image; $HUGGING_FACE_HUB_TOKEN is an envsubst placeholder, no secret",
    ),
    "lws_vllm_native_multinode": Verdict(
        True,
        {},
        "vLLM without Ray: --nnodes/--node-rank/--master-addr and --headless join the pods; 16 ranks on 16 GPUs",
    ),
    "lws_sglang_latest": Verdict(
        True,
        {"shared-memory-advice": 2, "image-pinned": 2},
        "a Memory /dev/shm without sizeLimit works (bounded by the pod): advice; :latest",
    ),
    "lws_sglang_pinned_hpa": Verdict(True, {"shared-memory-advice": 2}, "as above, pinned; the HPA is no workload"),
    "lws_vllm_tpu": Verdict(
        True,
        {"gpu-memory-unverified": 1, "shared-memory-advice": 2, "image-pinned": 2},
        "TP16 = 4 pods x 4 TPU chips; TPU memory is unknown to the pack; no memory limit",
    ),
    "lws_tensorrt_llm": Verdict(
        True,
        {
            "gpu-memory-unverified": 1,
            "shared-memory-advice": 2,
            "parallelism-advice": 1,
            "image-pinned": 2,
            "leader-probe": 1,
        },
        "a custom server.py the pack cannot read: cannot verify, never a denial",
    ),
    "lws_disagg_vllm_basic": Verdict(
        True,
        {"shared-memory-advice": 2},
        "DisaggregatedSet roles of one GPU in one pod each: 64 MiB default shm is advice only",
    ),
    "lws_disagg_sglang_basic": Verdict(True, {"shared-memory-advice": 2}, "the same, SGLang"),
    "lws_llamacpp_cpu": Verdict(
        True,
        {"gpu-memory-unverified": 1, "image-pinned": 2, "leader-probe": 1},
        "CPU-only llama.cpp: nothing to size or rank",
    ),
    "sglang_pd_decode_dp_attention": Verdict(
        True,
        {"gpu-memory-unverified": 1, "shared-memory-advice": 2, "image-pinned": 2},
        "--tp-size 16 with --dp-size 16 --enable-dp-attention = 16 ranks on "
        "2 x 8 GPUs (DP does not multiply); hostIPC; /work/models has no size",
    ),
    "llmd_wide_ep_decode": Verdict(
        True,
        {"shared-memory-advice": 1},
        "DP $((LWS_GROUP_SIZE * DP_SIZE_LOCAL)) = 8 from env on 8 GPUs; 2Gi shm on 8 GPUs "
        "is below our floor, not broken",
        gpu=H200,
    ),
    "llmd_amd_deepseek_decode": Verdict(
        True,
        {"gpu-memory-unverified": 1, "image-pinned": 1, "model-volume-readonly": 1},
        "amd.com/gpu: TP $TP_SIZE (1) x DP 16 = 2 x 8 AMD GPUs; a writable HF cache",
    ),
    "llmd_sglang_disaggregatedset": Verdict(
        True,
        {"image-pinned": 2},
        "each role TP8 x PP2 over 2 x 8 H200s, ${LWS_GROUP_SIZE:-2} resolves to 2; DeepSeek-R1 from the catalog fits",
        gpu=H200,
    ),
    "llmd_vllm_disaggregatedset": Verdict(
        True,
        {"shared-memory-advice": 2, "image-pinned": 2},
        "each role DP 16 x TP 1 with expert parallelism on 2 x 8 H200s; DeepSeek-R1 from the catalog fits",
        gpu=H200,
    ),
    "gke_vllm_llama405b_a3": Verdict(
        True, {"shared-memory-advice": 2}, "405B bf16 over 16 H100s fits; no memory limit on GKE is advice"
    ),
    "gke_vllm_deepseek_r1_a3": Verdict(
        True,
        {"shared-memory-advice": 2, "image-pinned": 2},
        "DeepSeek-R1 from the catalog (671B fp8, MLA) fits TP16 over 2 x 8 H100s",
    ),
    "gke_tensorrt_llm": Verdict(
        True,
        {
            "gpu-memory-unverified": 1,
            "shared-memory-advice": 2,
            "parallelism-advice": 1,
            "image-pinned": 2,
            "leader-probe": 1,
        },
        "the GKE TensorRT-LLM variant: unreadable server, token from a Secret",
    ),
    "gptoss_120b_one_h100": Verdict(
        True,
        {},
        "gpt-oss-120b is MXFP4 (~0.53 bytes per parameter): ~60 GiB fits one "
        "H100; args only, read through the vllm/vllm-openai entrypoint",
    ),
    "ascend_vllm_prefill": Verdict(
        True,
        {"gpu-memory-unverified": 1, "shared-memory-advice": 1, "parallelism-advice": 1},
        "Ascend NPUs count as accelerators: TP2 on 4 NPUs idles two (advice), 256Mi shm",
    ),
    # ---- broken: a mandatory policy denies, with the evidence -------------------------------------------
    "vllm_docs_lws": Verdict(
        False,
        {"no-plaintext-secrets": 2, "image-pinned": 2},
        "the docs tell you to paste the token as a literal env value",
    ),
    "broken_vllm_worker_without_shm": Verdict(False, {"shared-memory": 1}, "8 GPUs on the runtime's 64 MiB"),
    "broken_vllm_bash_lc_tp16": Verdict(False, {"parallelism": 1}, "`/usr/bin/env bash -lc` is read: 32 ranks on 16"),
    "broken_sglang_without_dist_init": Verdict(False, {"parallelism": 1}, "2 pods, nothing joins them"),
    "broken_vllm_pods_never_join": Verdict(False, {"parallelism": 1}, "2 pods, no Ray, no multi-node flags"),
    "broken_api_key_in_args": Verdict(
        False,
        {"no-plaintext-secrets": 1},
        "--api-key sk-... in args; the key-file path, HF_HUB_DISABLE_TOKEN=1 and KEY_FORMAT=pem are no secrets",
    ),
    "broken_token_in_configmap": Verdict(
        False,
        {"gpu-memory-unverified": 1, "no-plaintext-secrets": 1},
        "HF_TOKEN in a ConfigMap that envFrom reads; the LWS itself is fine",
    ),
    "broken_shm_over_memory_limit": Verdict(False, {"shared-memory": 2}, "32Gi shm in a 16Gi limit: OOM kill"),
    "broken_two_servers_one_pod": Verdict(False, {"parallelism": 1}, "the TP8 server sees 4 GPUs; the TP4 one is fine"),
}
