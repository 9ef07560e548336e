"""What `make policy-check` and `make preview` do before the preview: nothing that is already done.

The policy config is regenerated only when its stack file or its generator is newer (a make rule), and a stack the
file backend already holds is used without a CLI call (lws_ensure_stack in scripts/env.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATE = "python -m scripts.policy_config dev"


def _copy(tmp: Path) -> Path:
    """The files the Makefile's policy-config rule names, with their times in the order git left them."""
    for name in ("Makefile", "Pulumi.yaml", "Pulumi.dev.yaml", "scripts", "config", "kernel"):
        source = ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, tmp / name)
    (tmp / "policies" / "lws_guard").mkdir(parents=True)
    shutil.copy2(ROOT / "policies" / "lws_guard" / "settings.py", tmp / "policies" / "lws_guard")
    (tmp / "policies" / "config").mkdir()
    shutil.copy2(ROOT / "policies" / "config" / "dev.json", tmp / "policies" / "config")
    return tmp


def _planned(tmp: Path) -> str:
    result = subprocess.run(["make", "-n", "policies/config/dev.json"], cwd=tmp, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _age_everything(tmp: Path, seconds: float) -> None:
    for path in tmp.rglob("*"):
        stat = path.stat()
        os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_an_unchanged_stack_file_is_not_generated_again(tmp_path: Path) -> None:
    tmp = _copy(tmp_path)
    _age_everything(tmp, 100)
    (tmp / "policies" / "config" / "dev.json").touch()
    assert GENERATE not in _planned(tmp)


def test_an_edited_stack_file_or_generator_regenerates_its_policy_config(tmp_path: Path) -> None:
    tmp = _copy(tmp_path)
    now = time.time()
    _age_everything(tmp, 100)
    os.utime(tmp / "policies" / "config" / "dev.json", (now - 50, now - 50))
    os.utime(tmp / "Pulumi.dev.yaml", (now - 10, now - 10))
    assert GENERATE in _planned(tmp)
    os.utime(tmp / "Pulumi.dev.yaml", (now - 100, now - 100))
    assert GENERATE not in _planned(tmp)
    os.utime(tmp / "kernel" / "catalog.py", (now - 10, now - 10))
    assert GENERATE in _planned(tmp)


def _ensure_stack(tmp: Path, stack: str) -> list[str]:
    """Runs lws_ensure_stack with a `pulumi` on PATH that only records its arguments; returns them."""
    (tmp / "bin").mkdir(exist_ok=True)
    fake = tmp / "bin" / "pulumi"
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{tmp / "calls"}"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp / 'bin'}:/usr/bin:/bin", "PULUMI_BACKEND_URL": f"file://{tmp / 'state'}",
           "PULUMI_HOME": str(tmp / "home"), "ROOT": str(tmp)}  # fmt: skip
    script = f'source "{ROOT / "scripts" / "env.sh"}" && export PATH="{tmp / "bin"}:$PATH" && lws_ensure_stack {stack}'
    subprocess.run(["bash", "-c", script], cwd=tmp, env=env, check=True)
    calls = tmp / "calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_a_stack_the_file_backend_holds_is_used_without_the_cli(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: lws-inference\n")
    stacks = tmp_path / "state" / ".pulumi" / "stacks" / "lws-inference"
    stacks.mkdir(parents=True)
    (stacks / "dev.json").write_text("{}")
    assert _ensure_stack(tmp_path, "dev") == []
    assert _ensure_stack(tmp_path, "ack") == ["stack select --create ack"]
