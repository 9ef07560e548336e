"""SGLang's own argument parser, run with an SGLang virtualenv's Python (scripts/engines.sh python sglang-<release>).

Entry point launch_server: `python3 -m sglang.launch_server ...`, parsed as its prepare_server_args does
(ServerArgs.add_cli_args on an argparse parser), then mapped to ServerArgs' fields by ServerArgs.from_cli_args
(`--tp-size` lands in tensor_parallel_size, which the server reads as tp_size). ServerArgs.__post_init__ is
not run: it probes the GPU and the model's config. Protocol: tools/engines/harness.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

CHANNEL = harness.answers_channel()

import sglang  # noqa: E402
from sglang.srt.server_args import ServerArgs  # noqa: E402


@dataclasses.dataclass
class _FieldsOnly(ServerArgs):
    """ServerArgs as from_cli_args fills it, without the hardware and model probes of __post_init__."""

    def __post_init__(self) -> None:
        pass


def launch_server() -> tuple[argparse.ArgumentParser, harness.Parse]:
    parser = argparse.ArgumentParser(prog="launch_server.py")
    ServerArgs.add_cli_args(parser)

    def parse(argv: list[str]) -> dict[str, Any]:
        server_args = _FieldsOnly.from_cli_args(parser.parse_args(argv))
        return dataclasses.asdict(server_args)

    return parser, parse


harness.serve(sglang.__version__, {"launch_server": launch_server}, CHANNEL)
