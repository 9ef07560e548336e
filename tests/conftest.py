"""Test-session wiring: which tests share a worker under pytest-xdist (`TEST_WORKERS=N make test`), and the summary
of what the engines refused.

Tests of one shared resource run in one worker, one after another: the e2e tests share the local cluster
(scripts/cluster.sh brings one up per module), the engines tests the parser harness of each engine release
(minutes of imports, once per worker). The engine tests and the unit tests spread over the other workers.
"""

from __future__ import annotations

import pytest

ENGINE_REFUSAL = "engine_refusal"
"""A user property of a test report: a corpus command an engine refuses (recorded, not failed)."""

WORKER_GROUPS = {"e2e": "local-cluster", "engines": "engine-parsers"}
"""Marker -> xdist group."""


@pytest.hookimpl(tryfirst=True)  # before xdist's hook, which reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker, group in WORKER_GROUPS.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.xdist_group(group))


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
