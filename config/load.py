"""Stack config -> StackConfig, with every problem reported as `config-key: message`.

The loader takes a plain mapping so tests can call it without the Pulumi runtime; `from_pulumi`
reads the mapping from the stack. Secrets are never part of StackConfig: they stay Pulumi Outputs
(see `Secrets`) so their values reach only Kubernetes Secrets.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from config.model import SECRET_KEYS, StackConfig

TOP_LEVEL_KEYS = tuple(field.alias or name for name, field in StackConfig.model_fields.items())
"""The structured keys read from the stack; with SECRET_KEYS, every key the project has."""


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
            message += f" (got {_shown(item['input'])})"
        lines.append(f"{config_key(item['loc']) or '(stack config)'}: {message}")
    return lines


def _shown(value: Any) -> str:
    """The value as the user wrote it, shortened: a 400-digit number would hide the message."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _is_object(item: Any) -> bool:
    """A validator's problem with a whole object or list: echoing its input would bury the message."""
    return item["type"] == "value_error" and isinstance(item["input"], Mapping | list)


def unknown_top_level_keys(keys: Iterable[str]) -> list[str]:
    """Keys of the project that nothing reads: a misspelt `models` would otherwise mean "no models", and
    `pulumi up` would delete every group."""
    known = (*TOP_LEVEL_KEYS, *SECRET_KEYS)
    by_lower = {k.lower(): k for k in known}
    lines = []
    for key in sorted(set(keys) - set(known)):
        close = difflib.get_close_matches(key.lower(), by_lower, n=1, cutoff=0.6)
        hint = f"did you mean `{by_lower[close[0]]}`? " if close else ""
        lines.append(
            f"{config_key((key,))}: unknown key (lws-inference:{key} is not read; {hint}"
            f"the project's keys are {', '.join(TOP_LEVEL_KEYS)} and the secrets {', '.join(SECRET_KEYS)})"
        )
    return lines


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's config (every key under the project's namespace; secret keys are only checked
    for being known); raise ConfigError listing every problem."""
    problems = unknown_top_level_keys(raw)
    values = {key: raw[key] for key in TOP_LEVEL_KEYS if raw.get(key) is not None}
    if "cluster" not in values:
        problems.append("cluster: required (the cluster profile; see Pulumi.dev.yaml for an example)")
        raise ConfigError(problems)
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(problems + describe(error)) from None
    if problems:
        raise ConfigError(problems)
    return config


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
    keys = project_keys(project)
    raw = {key: _value(stack_config, key) for key in keys if key not in SECRET_KEYS}
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


def _value(stack_config: Any, key: str) -> Any:
    """A key's value as an object; a plain string that is not JSON stays a string, so validation names it."""
    import pulumi

    try:
        return stack_config.get_object(key)
    except pulumi.ConfigTypeError:
        return stack_config.get(key)


def project_keys(project: str) -> list[str]:
    """Every config key the stack sets under the project's namespace (`lws-inference:<key>`), whether or not
    the program reads it. The SDK has no public call for the list: the language host hands the config to the
    program as the PULUMI_CONFIG bag, and set_all_config (mocks, automation) fills runtime.config.CONFIG."""
    from pulumi.runtime.config import CONFIG, get_config_env

    prefix = f"{project}:"
    names = {*CONFIG.get(), *get_config_env()}
    return sorted(name.removeprefix(prefix) for name in names if name.startswith(prefix))
