"""The pack's command reader against the engines' own parsers, on manifests we did not generate.

For every container of every LeaderWorkerSet in the policy fixtures (tests/policies/fixtures) and in the pack's
corpus (tests/policies/corpus, when present), kernel.commands.read_flags reads TP, PP, DP and the model from the
command as written; the engine's parser reads them from the command as the pod runs it (Kubernetes' `$(VAR)`
expansion with the LWS environment and the container's literal env, then the shell). They must agree, or the
pack sizes memory, ranks and Ray clusters for numbers the engine never uses. A command the engine refuses is
recorded in the session's summary: that pod crash-loops whatever the pack reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine_parsers.check import ENGINE_FIELDS
from engine_parsers.client import EngineParsers, pinned_releases, release_name
from engine_parsers.invocation import Invocation, invocations, release_of
from kernel.catalog import Engine
from kernel.commands import read_servers
from tests.conftest import ENGINE_REFUSAL

pytestmark = pytest.mark.engines

POLICIES = Path(__file__).resolve().parents[1] / "policies"
SOURCES = [POLICIES / "fixtures", POLICIES / "corpus"]
COMPARED = ("tensor", "pipeline", "data", "model")


@dataclass(frozen=True)
class Container:
    where: str
    image: str
    command: tuple[str, ...]
    env: dict[str, str]


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for source in SOURCES:
        for path in sorted(source.rglob("*.yaml")) if source.is_dir() else []:
            for document in yaml.safe_load_all(path.read_text()):
                if isinstance(document, dict) and document.get("kind") == "LeaderWorkerSet":
                    yield str(path.relative_to(POLICIES)), document


def containers() -> list[Container]:
    found = []
    for path, lws in manifests():
        name, namespace = lws["metadata"]["name"], lws["metadata"].get("namespace", "default")
        template = lws["spec"]["leaderWorkerTemplate"]
        size = int(template.get("size", 1))
        roles = [("leader", 0, template.get("leaderTemplate") or template["workerTemplate"])]
        if size > 1:
            roles.append(("worker", 1, template["workerTemplate"]))
        for role, index, pod in roles:
            for container in pod["spec"]["containers"]:
                env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
                env |= {"LWS_LEADER_ADDRESS": f"{name}-0.{name}.{namespace}", "LWS_GROUP_SIZE": str(size),
                        "LWS_WORKER_INDEX": str(index)}  # fmt: skip
                command = (*container.get("command", []), *container.get("args", []))
                where = f"{path}:{name}:{role}:{container['name']}"
                found.append(Container(where, str(container.get("image", "")), command, env))
    return found


def parser_release(engine: str, image: str) -> str | None:
    """The image's release where tools/engines pins it, else that engine's newest pinned release."""
    release = release_of(image)
    if release and release_name(engine, release) in pinned_releases():
        return release_name(engine, release)
    same_engine = [name for name in pinned_releases() if name.startswith(f"{engine}-")]
    return same_engine[-1] if same_engine else None


def engine_reads(parsers: EngineParsers, release: str, invocation: Invocation) -> dict[str, Any] | str:
    """The compared values as the engine reads them, or its message when it refuses the command."""
    parsed = parsers.get(release).parse(invocation.entrypoint, invocation.args)
    if not parsed.accepted:
        return parsed.error
    fields = ENGINE_FIELDS[Engine(invocation.program)]
    return {key: parsed.values.get(fields[key]) for key in COMPARED}


def default_model(parsers: EngineParsers, release: str, entrypoint: str) -> Any:
    parsed = parsers.get(release).parse(entrypoint, [])
    return parsed.values.get("model") if parsed.accepted else None


CONTAINERS = containers()


def test_the_fixtures_hold_engine_commands() -> None:
    commands = [c for c in CONTAINERS if invocations(c.command, c.env)]
    assert len(commands) >= 5, [c.where for c in CONTAINERS]


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.where)
def test_the_pack_reads_what_the_engine_reads(
    container: Container, parsers: EngineParsers, record_property: Callable[[str, object], None]
) -> None:
    servers = [i for i in invocations(container.command, container.env) if i.program in {e.value for e in Engine}]
    # The pack reads every server of the container (read_servers), with the same environment, in order.
    for invocation, flags in zip(servers, read_servers(container.command, container.env), strict=True):
        release = parser_release(invocation.program, container.image)
        if release is None:
            continue
        engine = engine_reads(parsers, release, invocation)
        if isinstance(engine, str):
            record_property(ENGINE_REFUSAL, f"{container.where} ({release}): {engine}")
            continue
        pack: dict[str, Any] = {key: flags.integer(key) or 1 for key in ("tensor", "pipeline", "data")}
        pack["model"] = flags.values.get("model")
        if pack["model"] is None and engine["model"] == default_model(parsers, release, invocation.entrypoint):
            pack["model"] = engine["model"]  # neither names a model: the engine serves its default
        assert pack == engine, f"read_flags reads {pack}, {release} reads {engine}"
