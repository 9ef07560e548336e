"""Kept for existing imports: the scratch project lives in harness/scratch.py, shared with the benchmarks."""

from harness.scratch import (
    BIN,
    PASSPHRASE,
    ROOT,
    Project,
    PulumiCommandError,
    default_stack_config,
    offline_env,
    scratch_project,
    state_file,
)

__all__ = [
    "BIN",
    "PASSPHRASE",
    "ROOT",
    "Project",
    "PulumiCommandError",
    "default_stack_config",
    "offline_env",
    "scratch_project",
    "state_file",
]
