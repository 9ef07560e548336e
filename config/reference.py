"""The README's config reference, generated from the pydantic models so the two cannot drift.

    python -m config.reference          rewrite the section in README.md
    python -m config.reference --print  print it
tests/test_readme.py checks that the README holds exactly this text between its markers.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
import textwrap
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from config.model import SECRET_KEYS, StackConfig

BEGIN = "<!-- config-reference:begin -->"
END = "<!-- config-reference:end -->"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " | ".join(names)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        return "map"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, Enum):
        value = value.value
    return f"`{value}`" if value not in ({}, []) else ""


@functools.cache
def _docstrings_of_class(cls: type) -> dict[str, str]:
    """The string literal under each annotated attribute of the class's own body (PEP 257's attribute
    docstrings), read from its source."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(body, ast.ClassDef)
    found = {}
    for statement, following in itertools.pairwise(body.body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = inspect.cleandoc(following.value.value)
    return found


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Each field's docstring, inherited fields included (the nearest class that has one wins)."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            found.update(_docstrings_of_class(cls))
    return found


def _rows(model: type[BaseModel], prefix: str, seen: set[str]) -> list[str]:
    rows = []
    nested = []
    docstrings = field_docstrings(model)
    for name, field in model.model_fields.items():
        key = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
        description = " ".join((field.description or docstrings.get(name, "")).split())
        annotation = field.annotation
        is_list = typing.get_origin(annotation) is list or any(
            typing.get_origin(a) is list for a in typing.get_args(annotation)
        )
        rows.append(f"| `{key}` | {_type_name(annotation)} | {_default(field)} | {description} |")
        for child in _models_in(annotation):
            nested.append((child, f"{key}[]" if is_list else key))
    for child, key in nested:
        if key not in seen:
            seen.add(key)
            rows += _rows(child, key, seen)
    return rows


def reference() -> str:
    lines = [
        BEGIN,
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        *_rows(StackConfig, "", set()),
        "",
        "Secret keys (set with `pulumi config set --secret <key>`; a plaintext value is refused): "
        + ", ".join(f"`{k}`" for k in SECRET_KEYS)
        + ".",
        END,
    ]
    return "\n".join(lines)


README = Path(__file__).resolve().parents[1] / "README.md"


def rewrite_section(readme: Path, section: str) -> bool:
    """Replace the README section that starts and ends like `section` (its first and last lines, the
    markers); True when it changed."""
    begin, end = section.splitlines()[0], section.splitlines()[-1]
    text = readme.read_text()
    start, stop = text.index(begin), text.index(end) + len(end)
    updated = text[:start] + section + text[stop:]
    if updated != text:
        readme.write_text(updated)
    return updated != text


if __name__ == "__main__":
    if "--print" in sys.argv[1:]:
        print(reference())
    else:
        print(f"{README}: {'updated' if rewrite_section(README, reference()) else 'already up to date'}")
