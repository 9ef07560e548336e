"""Stack configs as a user writes them under the project's namespace in `Pulumi.<stack>.yaml`.

Every builder returns a fresh plain dict with camelCase keys (what `pulumi.Config().get_object()`
hands to `config.load.parse`), so a test may change it freely. `set_path` and `delete_path` edit one
key written as `pulumi config set --path` takes it, e.g. `models[0].serving.tensorParallel`.

The two seed examples:

* `cce_llama405b()`: Huawei Cloud CCE LeaderWorkerSet add-on example, Llama-3.1-405B in bf16 on
  2 groups of 2 pods x 8 NVIDIA-H100-80GB-HBM3 GPUs, TP=8 x PP=2, add-on LWS 0.6.1 (Kubernetes 1.27-1.31).
* `ack_qwen3_32b(engine)`: Alibaba Cloud ACK example, Qwen3-32B in bf16 on 2 pods x 1 NVIDIA-L20 GPU,
  TP=2, weights on an OSS volume, served by vLLM or SGLang.

`tiny_model()` is a small, fast-to-plan stack (a 1.5B model over 2 pods x 1 NVIDIA-L4 GPU) for tests
that need a multi-node group but not realistic numbers.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

Config = dict[str, Any]

VLLM_IMAGE = "vllm/vllm-openai:v0.10.0"
SGLANG_IMAGE = "lmsysorg/sglang:v0.4.10.post2-cu126"

# ---- model cards (from each model's config.json) -----------------------------------------------


def llama31_405b_card() -> Config:
    """meta-llama/Llama-3.1-405B-Instruct: 126 layers, 128 heads, 8 KV heads, hidden 16384."""
    return {
        "source": {"huggingFace": "meta-llama/Llama-3.1-405B-Instruct"},
        "parametersBillion": 405.85,
        "dtype": "bf16",
        "layers": 126,
        "attentionHeads": 128,
        "kvHeads": 8,
        "hiddenSize": 16384,
        "vocabSize": 128256,
        "contextLength": 131072,
    }


def qwen3_32b_card() -> Config:
    """Qwen/Qwen3-32B: 64 layers, 64 heads, 8 KV heads, head_dim 128 (not hidden/heads), hidden 5120."""
    return {
        "source": {"path": "Qwen3-32B"},
        "parametersBillion": 32.76,
        "dtype": "bf16",
        "layers": 64,
        "attentionHeads": 64,
        "kvHeads": 8,
        "headDim": 128,
        "hiddenSize": 5120,
        "vocabSize": 151936,
        "contextLength": 40960,
    }


def tiny_card() -> Config:
    """A Qwen2.5-1.5B-like card: 28 layers, 12 heads, 2 KV heads, hidden 1536."""
    return {
        "source": {"path": "tiny-1.5b"},
        "parametersBillion": 1.54,
        "layers": 28,
        "attentionHeads": 12,
        "kvHeads": 2,
        "hiddenSize": 1536,
        "vocabSize": 151936,
        "tiedEmbeddings": True,
        "contextLength": 32768,
    }


# ---- clusters ----------------------------------------------------------------------------------


def cce_cluster() -> Config:
    """CCE with the managed LWS add-on 0.6.1 (Kubernetes 1.27-1.31) and 8 x H100 per node."""
    return {
        "name": "cce-h100",
        "kubernetesVersion": "1.31",
        "lws": {"mode": "managed", "version": "0.6.1"},
        "gpu": {"product": "NVIDIA-H100-80GB-HBM3", "perNode": 8},
    }


def ack_cluster(product: str = "NVIDIA-L20") -> Config:
    """ACK with LWS installed by Helm in lws-system, one GPU per node, weights on OSS."""
    return {
        "name": "ack-l20",
        "kubernetesVersion": "1.33",
        "lws": {"mode": "install", "version": "0.7.0", "namespace": "lws-system"},
        "gpu": {"product": product, "perNode": 1},
        "storage": {
            "oss": {"bucket": "llm-models", "endpoint": "oss-cn-hangzhou-internal.aliyuncs.com"},
            "mountPath": "/models",
        },
    }


# ---- whole stacks ------------------------------------------------------------------------------


def deployment(name: str, card: Config, engine: str = "vllm", **serving: Any) -> Config:
    """One entry of `models`; `serving` keys are camelCase and override the engine's defaults."""
    image = VLLM_IMAGE if engine == "vllm" else SGLANG_IMAGE
    return {"name": name, "model": card, "serving": {"engine": engine, "image": image, **serving}}


def stack(cluster: Config, *models: Config) -> Config:
    return {"cluster": cluster, "models": list(models)}


def cce_llama405b() -> Config:
    return stack(
        cce_cluster(),
        deployment(
            "llama-405b",
            llama31_405b_card(),
            "vllm",
            replicas=2,
            tensorParallel=8,
            pipelineParallel=2,
            gpusPerPod=8,
        ),
    )


def ack_qwen3_32b(engine: str = "vllm", product: str = "NVIDIA-L20") -> Config:
    return stack(
        ack_cluster(product),
        deployment("qwen3-32b", qwen3_32b_card(), engine, replicas=1, tensorParallel=2, gpusPerPod=1),
    )


def tiny_model(engine: str = "vllm") -> Config:
    cluster: Config = {
        "name": "dev",
        "kubernetesVersion": "1.31",
        "lws": {"version": "0.7.0"},
        "gpu": {"product": "NVIDIA-L4", "perNode": 1},
        "storage": {"nfs": {"server": "10.0.0.2", "path": "/export/models"}},
    }
    return stack(
        cluster,
        deployment("tiny", tiny_card(), engine, tensorParallel=2, gpusPerPod=1, maxModelLen=4096),
    )


# ---- editing one key ---------------------------------------------------------------------------

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def path_parts(key: str) -> list[str | int]:
    """'models[0].serving.tensorParallel' -> ['models', 0, 'serving', 'tensorParallel']."""
    return [int(index) if index else name for name, index in _PART.findall(key)]


def set_path(config: Config, key: str, value: Any) -> Config:
    """A copy of config with key set, as `pulumi config set --path key value` would.

    Missing objects are created, and an index one past the end of a list appends to it.
    """
    result = copy.deepcopy(config)
    node: Any = result
    parts = path_parts(key)
    for part, following in itertools.pairwise(parts):
        if isinstance(part, str) and part not in node:
            node[part] = [] if isinstance(following, int) else {}
        elif isinstance(part, int) and part == len(node):
            node.append([] if isinstance(following, int) else {})
        node = node[part]
    last = parts[-1]
    if isinstance(last, int) and last == len(node):
        node.append(value)
    else:
        node[last] = value
    return result


def delete_path(config: Config, key: str) -> Config:
    """A copy of config without key, as `pulumi config rm --path key` would."""
    result = copy.deepcopy(config)
    node: Any = result
    parts = path_parts(key)
    for part in parts[:-1]:
        node = node[part]
    del node[parts[-1]]
    return result
