"""How long `pulumi preview` of the program takes for 1, 10 and 50 models, with and without the policy pack.

Run: python benchmarks/preview.py [counts...]. Prints figures only (machines differ; nothing is asserted).
Each stack is the default stack (render mode, installed LWS chart, NFS volume) with its Qwen3-32B SGLang group
repeated under distinct names; every preview runs the real CLI, language host, Kubernetes provider and, in the
second column, the pack with policies/config/dev.json. Also timed: the planner alone, in-process.
"""

from __future__ import annotations

import copy
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "policies")]

from config.load import parse  # noqa: E402
from plan.group import plan_stack  # noqa: E402
from tests.engine.scratch import default_stack_config, scratch_project  # noqa: E402

MODELS_KEY = "lws-inference:models"
RUNS = 2


def stack_with(models: int) -> dict[str, Any]:
    config = default_stack_config()
    template = next(m for m in config["config"][MODELS_KEY] if m["serving"]["engine"] == "sglang")
    config["config"][MODELS_KEY] = [{**copy.deepcopy(template), "name": f"qwen3-32b-{i}"} for i in range(models)]
    return config


def seconds(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_preview(models: int, *policy_args: str) -> tuple[float, int]:
    """Median seconds of a preview, and how many resources it would create."""
    with tempfile.TemporaryDirectory() as work:
        project = scratch_project(Path(work), stack_with(models))
        warm_up = project.pulumi("preview", *policy_args)  # plugin start-up and bytecode caches
        found = re.search(r"(\d+) to create", warm_up.stdout)
        creates = int(found.group(1)) if found else -1
        runs = [seconds(lambda: project.pulumi("preview", *policy_args)) for _ in range(RUNS)]
        return statistics.median(runs), creates


def plan_seconds(models: int) -> float:
    raw = {key.split(":", 1)[1]: value for key, value in stack_with(models)["config"].items()}
    config = parse(raw)
    return statistics.median(seconds(lambda: plan_stack(config)) for _ in range(5))


def main(counts: list[int]) -> None:
    pack = ("--policy-pack", "policies", "--policy-pack-config", str(ROOT / "policies" / "config" / "dev.json"))
    print(f"pulumi preview of the default stack with N models (median of {RUNS} after a warm-up), seconds")
    print(f"{'models':>6} {'resources':>9} {'preview':>8} {'+ pack':>8} {'plan only':>10}")
    for models in counts:
        plain, resources = median_preview(models)
        checked, _ = median_preview(models, *pack)
        print(f"{models:>6} {resources:>9} {plain:>8.1f} {checked:>8.1f} {plan_seconds(models) * 1000:>8.1f}ms")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1, 10, 50])
