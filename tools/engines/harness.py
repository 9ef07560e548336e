"""The protocol of the engine parser harnesses (run with an engine's own virtualenv, see scripts/engines.sh).

One JSON request a line on stdin, one JSON answer a line on stdout, so a test session builds each engine's
parser once and asks it about every command:
  {"parse": "<entrypoint>", "argv": [...]}  ->  {"accepted": true, "values": {dest: value}}
                                            or  {"accepted": false, "error": "<the engine's own message>"}
  {"options": "<entrypoint>"}               ->  {"options": [{"flags": [...], "dest": ..., "takes_value": ...}]}
  {"release": null}                         ->  {"release": "<the installed engine's version>"}
Engines log to stdout, so the answers get a duplicate of the real stdout and everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

Parse = Callable[[list[str]], dict[str, Any]]


def answers_channel() -> io.TextIOWrapper:
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return channel


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return out


def parse_with(parse: Parse, argv: list[str]) -> dict[str, Any]:
    """The values, or the message the engine prints when it refuses the command (argparse exits with 2)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            values = parse(argv)
    except SystemExit:
        lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
        errors = [line for line in lines if ": error: " in line]
        return {"accepted": False, "error": (errors or lines or ["exited"])[-1]}
    except Exception as error:  # the engine's own validation after parsing (ValueError, TypeError, ...)
        return {"accepted": False, "error": f"{type(error).__name__}: {error}"}
    return {"accepted": True, "values": jsonable(values)}


def options_of(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    return [
        {"flags": list(action.option_strings), "dest": action.dest, "takes_value": action.nargs != 0}
        for action in parser._actions
        if action.option_strings
    ]


def serve(
    release: str, parsers: dict[str, Callable[[], tuple[argparse.ArgumentParser | None, Parse]]], channel: Any
) -> None:
    built: dict[str, tuple[argparse.ArgumentParser | None, Parse]] = {}

    def get(entrypoint: str) -> tuple[argparse.ArgumentParser | None, Parse]:
        if entrypoint not in built:
            built[entrypoint] = parsers[entrypoint]()
        return built[entrypoint]

    for line in sys.stdin:
        request = json.loads(line)
        try:
            if "parse" in request:
                answer = parse_with(get(request["parse"])[1], list(request["argv"]))
            elif "options" in request:
                parser = get(request["options"])[0]
                answer = {"options": options_of(parser) if parser else []}
            else:
                answer = {"release": release}
        except Exception:
            answer = {"failure": traceback.format_exc()}
        channel.write(json.dumps(answer) + "\n")
