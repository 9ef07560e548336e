"""The engines' parsers for the whole session: one harness process, so one parser build, per engine release.

The first use builds the engine environments (scripts/engines.sh: minutes and several GB, once per machine;
`make test` builds them first through `make engines`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine_parsers.client import EngineParsers

REFUSALS: list[str] = []
"""Commands of the policy corpus that an engine refuses, recorded for the session's summary."""


@pytest.fixture(scope="session")
def parsers() -> Iterator[EngineParsers]:
    registry = EngineParsers()
    yield registry
    registry.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REFUSALS:
        terminalreporter.section("corpus commands the engines refuse (recorded, see tests/engines)")
        for line in REFUSALS:
            terminalreporter.write_line(line)
