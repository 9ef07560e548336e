"""Real Pulumi engine tests run the program and the pack in a scratch copy of the project (scratch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scratch import Project, default_stack_config, scratch_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The default stack, rendering into the scratch directory."""
    return scratch_project(tmp_path, default_stack_config())
