"""Project tools written in Python, run from the project root: `python -m scripts.<tool>`."""

import sys
from pathlib import Path

# The tools read the policy pack (policies/lws_guard) as the pack's own tests do.
_POLICIES = str(Path(__file__).resolve().parents[1] / "policies")
if _POLICIES not in sys.path:
    sys.path.append(_POLICIES)
