"""Serves the policy pack; all policy code lives in lws_guard (PolicyPack() never returns)."""

import sys
from pathlib import Path

# The pack runs with policies/ as its working directory: make the repository's kernel importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lws_guard import runtime
from lws_guard.pack import PACK_NAME, resource_policies, stack_policies
from pulumi_policy import EnforcementLevel, PolicyPack

runtime.prepare()  # an unbuffered stdout for the port, CRDs without their spec for the SDK (see runtime)
PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*resource_policies(), *stack_policies()],
)
