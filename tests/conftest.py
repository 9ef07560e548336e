"""Test-session wiring: which tests share a worker under pytest-xdist (`TEST_WORKERS=N make test`), and the summary
of what the engines refused.

Work goes to the workers a module at a time (its module-scoped fixtures are built once, its tests keep their
order), and the tests of one shared resource go to one worker, one module after another: the e2e modules share
the local cluster (scripts/cluster.sh brings one up per module), the engines modules the parser harness of each
engine release. This is decided from the node id, on the controller: pytest-xdist 3.8.0's `xdist_group` marks
are silently ignored under pytest 9.2 (pytest-dev/pytest-xdist#1386), which ran the e2e modules in two workers
at once against one cluster.
"""

from __future__ import annotations

from typing import Any

import pytest

ENGINE_REFUSAL = "engine_refusal"
"""A user property of a test report: a corpus command an engine refuses (recorded, not failed)."""

SHARED_RESOURCES = {"tests/e2e/": "local-cluster", "tests/engines/": "engine-parsers"}
"""Test directory -> the resource its modules share, so they run in one worker."""


def work_unit(nodeid: str) -> str:
    """What goes to one worker together: the shared resource of the test's directory, else its module."""
    module = nodeid.split("::", 1)[0]
    return next((resource for prefix, resource in SHARED_RESOURCES.items() if module.startswith(prefix)), module)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None  # another --dist asked for: xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class SharedResourceScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedResourceScheduling(config, log)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    refusals = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == ENGINE_REFUSAL and getattr(report, "when", "call") == "call"
    ]
    if refusals:
        terminalreporter.section("corpus commands the engines refuse (recorded, see tests/engines)")
        for line in refusals:
            terminalreporter.write_line(line)
