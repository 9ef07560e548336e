"""The engines' parsers for the whole session: one harness process, so one parser build, per engine release.

The first use builds the engine environments (scripts/engines.sh: minutes and several GB, once per machine;
`make test` builds them first through `make engines`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine_parsers.client import EngineParsers


@pytest.fixture(scope="session")
def parsers() -> Iterator[EngineParsers]:
    registry = EngineParsers()
    yield registry
    registry.close()
