"""How close `make preview` and `make policy-check` of the dev stack come to the engine's floor.

Run: python benchmarks/preview.py [--rounds N] [--sources DIR] [--before DIR] [--models N]. Prints figures only
(nothing is asserted). Every project is applied first (`pulumi up`), so every preview is of an applied, unchanged
stack, as a pull request sees it. Variants, paired (one run of each per round, A B C D A B C D ...); seconds are
medians over the rounds, ratios the median of each round's ratio (so what drifts between rounds cancels):
* policy-check: what `make policy-check STACK=dev` runs on an unchanged stack file, scripts/setup.sh and
  lws_ensure_stack (of this checkout), then `pulumi preview` with the policy pack and policies/config/dev.json,
  on a scratch copy of the program (of --sources, this checkout by default);
* preview: the same without the pack (`make preview`);
* with --before: the policy-check and preview of another checkout too, in the same rounds (before/after);
* floor: the same objects as the program rendered them, registered as plain resources by harness/floor_program.py
  (no chart, no components, no planner) through the same CLI, provider and environment (scripts/env.sh), `pulumi
  preview` alone; and floor + pack, with the pack.
For each: seconds, the CLI's own share of the CPU of the command and everything it ran, and the bytes written into
the automatic log directory ($PULUMI_HOME/logs; LWS_PULUMI_LOGS=on lets the CLI write it, see scripts/env.sh).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from harness.measure import Run, Summary, measured, paired  # noqa: E402
from harness.scratch import (  # noqa: E402
    Project,
    PulumiCommandError,
    default_home,
    default_stack_config,
    scratch_project,
    stack_project,
)

MODELS_KEY = "lws-inference:models"
PACK = ("--policy-pack", "policies", "--policy-pack-config", str(ROOT / "policies" / "config" / "dev.json"))


def stack_with(models: int | None) -> dict[str, Any]:
    """The dev stack, or its Qwen3-32B SGLang group repeated `models` times under distinct names."""
    config = default_stack_config()
    if models is not None:
        template = next(m for m in config["config"][MODELS_KEY] if m["serving"]["engine"] == "sglang")
        config["config"][MODELS_KEY] = [{**copy.deepcopy(template), "name": f"qwen3-32b-{i}"} for i in range(models)]
    return config


def bench_home(work: Path) -> Path:
    """A PULUMI_HOME of its own (so its logs are this benchmark's alone), with the installed plugins."""
    home = work / "home"
    home.mkdir()
    plugins = default_home() / "plugins"
    (home / "plugins").symlink_to(plugins)
    return home


def floor_project(path: Path, program: Project, home: Path) -> Project:
    """The floor's program beside the program's policy pack (and the kernel, which the pack imports)."""
    path.mkdir()
    for name in ("policies", "kernel"):
        (path / name).symlink_to(program.path / name)
    objects = program.manifests()
    (path / "Pulumi.yaml").write_text(
        yaml.safe_dump({"name": "lws-floor", "runtime": {"name": "python", "options": {"virtualenv": ".venv"}}})
    )
    shutil.copy(ROOT / "harness" / "floor_program.py", path / "__main__.py")
    (path / "objects.json").write_text(json.dumps(objects))
    (path / ".venv").symlink_to(ROOT / ".venv")
    return stack_project(path, {"config": {"floor:renderDir": "rendered"}}, home)


def as_make_runs(project: Project, *args: str) -> Callable[[], Run]:
    """What `make preview` / `make policy-check` run for an applied stack whose stack file did not change: the
    setup target (scripts/setup.sh), lws_ensure_stack (scripts/env.sh), then `pulumi preview`. (The policy config
    is not generated again: its make rule finds it newer than the stack file.)"""
    prepare = f'source "{ROOT / "scripts" / "env.sh"}" && "{ROOT / "scripts" / "setup.sh"}" && lws_ensure_stack test'

    def run() -> Run:
        before = measured(["bash", "-c", prepare], project.path, project.env)
        if before.returncode != 0:
            raise PulumiCommandError(f"setup or lws_ensure_stack failed:\n{before.output}")
        preview = project.measure("preview", *args)
        return Run(
            before.seconds + preview.seconds,
            before.own_cpu + preview.own_cpu,
            before.total_cpu + preview.total_cpu,
            before.log_bytes + preview.log_bytes,
            preview.returncode,
            preview.stdout,
            preview.stderr,
        )

    return run


def paired_ratio(result: Summary, base: Summary) -> float:
    """The median over rounds of result / base within each round: what drifts between rounds cancels."""
    return statistics.median(r.seconds / b.seconds for r, b in zip(result.runs, base.runs, strict=True))


def row(label: str, result: Summary, floor: Summary) -> str:
    return (
        f"  {label:21} {result.seconds:7.2f} s  {paired_ratio(result, floor):5.2f}x  "
        f"CLI {result.own_cpu_share:4.0%} of CPU  log {result.log_bytes / 1e6:7.2f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sources", type=Path, default=ROOT, help="checkout whose program and pack are measured")
    parser.add_argument("--models", type=int, default=None, help="repeat the SGLang group this many times")
    parser.add_argument("--before", type=Path, default=None, help="another checkout, measured in the same rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="preview-bench-") as tmp:
        work = Path(tmp)
        home = bench_home(work)
        checkouts = {"": ("program", args.sources)}  # label suffix -> (scratch directory, checkout)
        if args.before:
            checkouts[" (before)"] = ("before", args.before)
        programs = {}
        for suffix, (directory, sources) in checkouts.items():
            (work / directory).mkdir()
            programs[suffix] = scratch_project(work / directory, stack_with(args.models), sources, home)
            programs[suffix].pulumi("up", "--yes", "--skip-preview")
        floor = floor_project(work / "floor", programs[""], home)
        objects = programs[""].manifests()
        floor.pulumi("up", "--yes", "--skip-preview")
        for project in (*programs.values(), floor):  # warm-up: OS caches, bytecode, plugin start-up
            project.pulumi("preview", *PACK)
        variants: dict[str, Callable[[], Run]] = {}
        for suffix, program in programs.items():
            variants[f"policy-check{suffix}"] = as_make_runs(program, *PACK)
            variants[f"preview{suffix}"] = as_make_runs(program)
        variants["floor + pack"] = lambda: floor.measure("preview", *PACK)
        variants["floor"] = lambda: floor.measure("preview")
        results = paired(variants, args.rounds)
    base = results["floor"]
    measured_checkouts = ", ".join(str(sources) for _, sources in checkouts.values())
    print(
        f"applied dev stack ({len(objects)} objects, program of {measured_checkouts}), "
        f"{args.rounds} paired rounds; seconds: medians; ratios: medians of each round's ratio"
    )
    for label, result in results.items():
        print(row(label, result, base))
    for suffix in programs:
        check, plain = results[f"policy-check{suffix}"], results[f"preview{suffix}"]
        print(f"  policy-check{suffix} / floor {paired_ratio(check, base):12.2f}   (target <= 1.2)")
        print(f"  policy-check{suffix} / floor + pack {paired_ratio(check, results['floor + pack']):5.2f}")
        print(f"  the pack adds to the preview{suffix} {paired_ratio(check, plain) - 1:+5.0%}   (target <= +15%)")


if __name__ == "__main__":
    main()
