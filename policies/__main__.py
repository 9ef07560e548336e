"""Serves the policy pack; all policy code lives in lws_guard (PolicyPack() never returns)."""

import io
import sys
from pathlib import Path

# The pack runs with policies/ as its working directory: make the repository's kernel importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lws_guard.pack import PACK_NAME, resource_policies, stack_policies
from pulumi_policy import EnforcementLevel, PolicyPack

# PolicyPack announces its port on sys.stdout.buffer and never flushes it. Where the CLI's environment lacks
# PYTHONUNBUFFERED (a plain `env -i` shell, some CI runners), the port stays in the buffer and `pulumi preview`
# waits forever for the pack; an unbuffered stdout delivers it at once.
sys.stdout = io.TextIOWrapper(io.FileIO(sys.stdout.fileno(), "wb", closefd=False), write_through=True)

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*resource_policies(), *stack_policies()],
)
