"""The layering the README's layout paragraph states, read from the imports: a test fails when a module reaches
up a layer (the kernel into the config, the pack into the planner, ...)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "kernel": {"config", "plan", "components", "lws_guard", "pulumi", "pulumi_kubernetes", "pydantic"},
    "config": {"plan", "components", "lws_guard", "pulumi_kubernetes"},  # config/load.py reads Pulumi config
    "plan": {"components", "lws_guard", "pulumi", "pulumi_kubernetes"},
    "policies/lws_guard": {"config", "plan", "components"},
    "benchmarks": {"tests"},
    "harness": {"tests"},
}
# The command line, not a rule: `lws_guard check --stack` derives a stack's policy config from its stack file.
EXEMPT = {"policies/lws_guard/cli.py"}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_its_own(layer: str) -> None:
    modules = [p for p in sorted((ROOT / layer).rglob("*.py")) if str(p.relative_to(ROOT)) not in EXEMPT]
    assert modules, f"{layer} has no modules"
    reaching = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[layer]) for path in modules}
    assert {module: names for module, names in reaching.items() if names} == {}
