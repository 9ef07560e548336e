"""`python -m lws_guard check PATH...`: the pack's policies on YAML files (lws_guard.cli)."""

import sys
from pathlib import Path

# The rules import the repository's `plan`: make it importable from a checkout, as policies/__main__.py does.
_ROOT = str(Path(__file__).resolve().parents[2])
if (Path(_ROOT) / "plan").is_dir() and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from lws_guard.cli import main  # noqa: E402

sys.exit(main())
