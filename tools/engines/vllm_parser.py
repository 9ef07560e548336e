"""vLLM's own argument parsers, run with a vLLM virtualenv's Python (scripts/engines.sh python vllm-<release>).

Entry points, built as vLLM builds them:
  api_server  `python3 -m vllm.entrypoints.openai.api_server ...` (the module's __main__: make_arg_parser on a
              FlexibleArgumentParser, then validate_parsed_serve_args)
  serve       `vllm serve [model] ...` (the CLI's serve subcommand; a positional model overrides --model)
  ray_start   `ray start ...` as multi-node-serving.sh calls it (Ray's own click command, parsed, never run)
Protocol: tools/engines/harness.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

CHANNEL = harness.answers_channel()

import vllm  # noqa: E402
import vllm.platforms  # noqa: E402
from vllm.platforms.cpu import CpuPlatform  # noqa: E402

# No GPU here: without a platform, DeviceConfig's defaults fail with "Failed to infer device type".
vllm.platforms._current_platform = CpuPlatform()

from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args  # noqa: E402
from vllm.utils import FlexibleArgumentParser  # noqa: E402


def api_server() -> tuple[argparse.ArgumentParser, harness.Parse]:
    parser = make_arg_parser(FlexibleArgumentParser(prog="api_server.py"))

    def parse(argv: list[str]) -> dict[str, Any]:
        args = parser.parse_args(argv)
        validate_parsed_serve_args(args)
        return vars(args)

    return parser, parse


def serve() -> tuple[argparse.ArgumentParser, harness.Parse]:
    from vllm.entrypoints.cli.serve import ServeSubcommand

    command = ServeSubcommand()
    top = FlexibleArgumentParser(prog="vllm")
    subcommand = command.subparser_init(top.add_subparsers(required=False, dest="subparser"))

    def parse(argv: list[str]) -> dict[str, Any]:
        args = top.parse_args(["serve", *argv])
        command.validate(args)
        if getattr(args, "model_tag", None) is not None:
            args.model = args.model_tag
        return vars(args)

    return subcommand, parse


def ray_start() -> tuple[None, harness.Parse]:
    import click
    from ray.scripts.scripts import start

    def parse(argv: list[str]) -> dict[str, Any]:
        try:
            context = start.make_context("ray start", list(argv))
        except click.exceptions.ClickException as error:
            raise ValueError(f"ray start: {error.format_message()}") from None
        return dict(context.params)

    return None, parse


harness.serve(vllm.__version__, {"api_server": api_server, "serve": serve, "ray_start": ray_start}, CHANNEL)
