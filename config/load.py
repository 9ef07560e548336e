"""Stack config -> StackConfig, with every problem reported as `config-key: message`.

The loader takes a plain mapping so tests can call it without the Pulumi runtime; `from_pulumi`
reads the mapping from the stack. Secrets are never part of StackConfig: they stay Pulumi Outputs
(see `Secrets`) so their values reach only Kubernetes Secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from config.model import SECRET_KEYS, StackConfig

TOP_LEVEL_KEYS = ("target", "cluster", "models", "manifests")


class ConfigError(Exception):
    """The stack config is invalid; one line per problem, each naming its config key."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def config_key(location: Sequence[int | str]) -> str:
    """('models', 0, 'serving', 'tensorParallel') -> 'models[0].serving.tensorParallel'.

    Map keys that `--path` would split or misread (label keys such as nvidia.com/gpu.product) are
    written as ["..."], the form `pulumi config set --path` takes for them.
    """
    key = ""
    for part in location:
        if isinstance(part, int):
            key += f"[{part}]"
        elif not _PLAIN_NAME.match(part):
            key += f"[{json.dumps(part)}]"
        else:
            key += f".{part}" if key else part
    return key


def describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        # Model validators report at their object; their message already names the fields.
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and case: keys are camelCase)"
        elif item["type"] == "missing":
            message = "required"
        elif "input" in item and item["type"] != "model_type" and not _is_object(item):
            message += f" (got {item['input']!r})"
        lines.append(f"{config_key(item['loc']) or '(stack config)'}: {message}")
    return lines


def _is_object(item: Any) -> bool:
    """A validator's problem with a whole object or list: echoing its input would bury the message."""
    return item["type"] == "value_error" and isinstance(item["input"], Mapping | list)


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's structured config; raise ConfigError listing every problem."""
    values = {key: raw[key] for key in TOP_LEVEL_KEYS if raw.get(key) is not None}
    if "cluster" not in values:
        raise ConfigError(["cluster: required (the cluster profile; see Pulumi.dev.yaml for an example)"])
    try:
        return StackConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(describe(error)) from None


@dataclass(frozen=True)
class PlaintextSecret:
    key: str

    def __str__(self) -> str:
        return (
            f"{self.key}: is set in plaintext; set it with `pulumi config set --secret {self.key}` "
            "so its value is encrypted in the stack file and state"
        )


def plaintext_secrets(is_secret: Mapping[str, bool]) -> list[str]:
    """Secret keys that are present but not marked secret."""
    return [str(PlaintextSecret(key)) for key in SECRET_KEYS if is_secret.get(key) is False]


def from_pulumi() -> tuple[StackConfig, dict[str, Any]]:
    """Read and validate this stack's config; the second value holds the secret keys as Outputs."""
    import pulumi
    from pulumi.runtime.config import get_config, is_config_secret

    project = pulumi.get_project()
    stack_config = pulumi.Config()
    raw = {key: stack_config.get_object(key) for key in TOP_LEVEL_KEYS}
    presence = {key: is_config_secret(f"{project}:{key}") for key in SECRET_KEYS if get_config(f"{project}:{key}")}
    problems = plaintext_secrets(presence)
    try:
        config = parse(raw)
    except ConfigError as error:
        raise ConfigError(error.lines + problems) from None
    if problems:
        raise ConfigError(problems)
    secrets = {key: stack_config.get_secret(key) for key in presence}
    return config, secrets
