"""The engines' parser harnesses, one long-lived process per engine release (one parser build each)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "tools" / "engines"
ENGINES_SH = ROOT / "scripts" / "engines.sh"
HARNESSES = {"vllm": PINS / "vllm_parser.py", "sglang": PINS / "sglang_parser.py"}


class EngineEnvironmentError(Exception):
    """An engine's environment could not be built or its harness failed (not a verdict on a command)."""


@dataclass(frozen=True)
class Parsed:
    accepted: bool
    values: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    """The engine's own message when it refuses the command."""


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    dest: str
    takes_value: bool


def pinned_releases() -> list[str]:
    """`<engine>-<release>` of every engine environment tools/engines pins."""
    return sorted(path.stem for path in PINS.glob("*.txt"))


def release_name(program: str, release: str) -> str:
    return f"{program}-{release}"


class EngineParser:
    """The parsers of one engine release, asked over the harness's stdin and stdout."""

    def __init__(self, name: str) -> None:
        self.name = name
        program = name.split("-", 1)[0]
        built = subprocess.run([str(ENGINES_SH), "python", name], capture_output=True, text=True, check=False)
        if built.returncode != 0:
            raise EngineEnvironmentError(f"scripts/engines.sh python {name} failed:\n{built.stderr.strip()}")
        python = built.stdout.strip().splitlines()[-1]
        # Kept open for the process's life, closed by close(): the harness's stderr, shown when it dies.
        self._log: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._process = subprocess.Popen(
            [python, str(HARNESSES[program])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=tempfile.gettempdir(),
        )

    def _ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
            line = stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._log.seek(0)
            raise EngineEnvironmentError(f"the {self.name} parser harness died:\n{self._log.read()[-4000:]}")
        answer: dict[str, Any] = json.loads(line)
        if "failure" in answer:
            raise EngineEnvironmentError(f"the {self.name} parser harness failed:\n{answer['failure']}")
        return answer

    def parse(self, entrypoint: str, argv: Sequence[str]) -> Parsed:
        answer = self._ask({"parse": entrypoint, "argv": list(argv)})
        return Parsed(bool(answer["accepted"]), answer.get("values", {}), answer.get("error", ""))

    def options(self, entrypoint: str) -> list[Option]:
        return [
            Option(tuple(o["flags"]), str(o["dest"]), bool(o["takes_value"]))
            for o in self._ask({"options": entrypoint})["options"]
        ]

    def release(self) -> str:
        return str(self._ask({"release": None})["release"])

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # the engines' exit handlers took 20 s at the end of every session
            self._process.kill()
            self._process.wait()
        self._log.close()


class EngineParsers:
    """One EngineParser per release, started on first use and kept for the session."""

    def __init__(self) -> None:
        self._parsers: dict[str, EngineParser] = {}

    def get(self, name: str) -> EngineParser:
        if name not in self._parsers:
            self._parsers[name] = EngineParser(name)
        return self._parsers[name]

    def close(self) -> None:
        for parser in self._parsers.values():
            parser.close()
        self._parsers.clear()
