"""Reading container commands the way the kubelet and a POSIX shell would, without running anything.

* `shell_script`: the script of `sh -c`, `bash -lc`, `bash -o pipefail -c`, `/usr/bin/env bash -c`,
  dash, zsh, ... (any shell by its basename, options before `-c` skipped);
* `simple_commands`: a script split into simple commands at `;`, `&&`, `||`, `|`, `&` and newlines,
  by shlex (posix mode) with comments dropped;
* `kubernetes_expand`: `$(VAR)` of command/args replaced from the container's env, as the kubelet
  does before anything runs (`$$(VAR)` stays literal; an unknown `$(VAR)` is left as written);
* `shell_expand`: `$VAR`, `${VAR}`, `${VAR:-default}` and `$((arithmetic))` over known values. The
  arithmetic is evaluated on Python's ast with integers and + - * / % only (no eval), and bounded.

What cannot be resolved stays in the word as written, so a caller can tell "unknown" from a value.
"""

from __future__ import annotations

import ast
import operator
import re
import shlex
from collections.abc import Callable, Mapping, Sequence

SHELL_NAMES = {"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "busybox"}
# Options of a shell that take the next word as their value (bash -o pipefail, -O extglob).
_OPTION_WITH_VALUE = {"-o", "+o", "-O", "+O"}
_SEPARATORS = {";", "&&", "||", "|", "&", "\n", ";;", "|&", "&>"}
# Words before the program of a simple command that do not change which program runs.
_PREFIXES = {"exec", "nohup", "time", "command", "builtin", "stdbuf", "setsid", "eval"}
# Largest magnitude an arithmetic result or a literal may have: beyond any real GPU or token count,
# small enough that int/float conversions downstream never overflow.
MAX_MAGNITUDE = 10**15

_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_KUBE_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_ARITHMETIC = re.compile(r"\$\(\((.*?)\)\)", re.DOTALL)
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}")
_PLAIN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ARITH_NAME = re.compile(r"\$?\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def shell_script(argv: Sequence[str]) -> str | None:
    """The script a `<shell> [options] -c SCRIPT` command line runs; None when it runs no shell script."""
    words = list(argv)
    start = 0
    if words and basename(words[0]) == "env":
        start = 1
        while start < len(words) and (words[start].startswith("-") or _ASSIGNMENT.match(words[start])):
            start += 1
    if start >= len(words) or basename(words[start]) not in SHELL_NAMES:
        return None
    index = start + 1
    if basename(words[start]) == "busybox":
        if index >= len(words) or words[index] not in SHELL_NAMES:
            return None
        index += 1
    takes_script = False
    while index < len(words):
        word = words[index]
        if word in _OPTION_WITH_VALUE:
            index += 2
            continue
        if word == "--":
            index += 1
            break
        if len(word) > 1 and word[0] in "-+" and word[1:].isalpha():
            takes_script |= word[0] == "-" and "c" in word[1:]
            index += 1
            continue
        break
    return words[index] if takes_script and index < len(words) else None


def _lex(script: str, commenters: str) -> list[str]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = commenters
    return list(lexer)


def _tokens(script: str) -> list[str]:
    joined = script.replace("\\\r\n", " ").replace("\\\n", " ")
    # $(( a * b )) is one word to the shell; without its blanks it is one to shlex too.
    joined = _ARITHMETIC.sub(lambda m: "$((" + "".join(m.group(1).split()) + "))", joined)
    try:
        tokens = _lex(joined, "")
    except ValueError:
        try:
            return _lex(joined, "#")
        except ValueError:
            return joined.split()
    kept: list[str] = []
    in_comment = False
    for token in tokens:
        if token == "\n":
            in_comment = False
        elif in_comment or token.startswith("#"):
            in_comment = True
            continue
        kept.append(token)
    return kept


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a script, in order, each a list of words (quotes removed)."""
    commands: list[list[str]] = [[]]
    for token in _tokens(script):
        if token in _SEPARATORS or set(token) <= set(";&|\n"):
            if commands[-1]:
                commands.append([])
            continue
        commands[-1].append(token)
    return [c for c in commands if c]


def split_prefix(words: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """`A=1 exec env B=2 vllm serve` -> ({A: 1, B: 2}, [vllm, serve]): assignments before the program."""
    assignments: dict[str, str] = {}
    rest = list(words)
    while rest:
        match = _ASSIGNMENT.match(rest[0])
        if match:
            assignments[match.group(1)] = match.group(2)
        elif rest[0] not in _PREFIXES and basename(rest[0]) != "env" and rest[0] != "export":
            break
        rest = rest[1:]
    return assignments, rest


def kubernetes_expand(word: str, env: Mapping[str, str]) -> str:
    """$(VAR) replaced from env as the kubelet does it; $$ is a literal $; unknown references stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _KUBE_REF.sub(replace, word)


def shell_expand(word: str, variables: Mapping[str, str]) -> str:
    """$VAR, ${VAR}, ${VAR:-default} and $((expr)) of one word, where the values are known."""

    def arithmetic(match: re.Match[str]) -> str:
        # Parameter expansion happens first inside $((...)), as in the shell: ${N:-0}, $N.
        inner = _PLAIN.sub(plain, _BRACED.sub(braced, match.group(1)))
        value = evaluate_arithmetic(inner, variables)
        return match.group(0) if value is None else str(value)

    def braced(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables and (variables[name] or default is None):
            return variables[name]
        return default if default is not None else match.group(0)

    def plain(match: re.Match[str]) -> str:
        return variables.get(match.group(1), match.group(0))

    word = _ARITHMETIC.sub(arithmetic, word)
    word = _BRACED.sub(braced, word)
    return _PLAIN.sub(plain, word)


_OPERATORS: dict[type[ast.AST], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


def evaluate_arithmetic(expression: str, variables: Mapping[str, str]) -> int | None:
    """A shell $((...)) over integers and known variables; None for anything else (never raises)."""
    if len(expression) > 200:
        return None
    names_ok = True

    def value_of(match: re.Match[str]) -> str:
        nonlocal names_ok
        raw = variables.get(match.group(1), "").strip()
        if not (raw.isascii() and raw.lstrip("-").isdigit() and len(raw) <= 16):
            names_ok = False
            return "0"
        return f"({raw})"

    substituted = _ARITH_NAME.sub(value_of, expression)
    if not names_ok:
        return None
    try:
        tree = ast.parse(substituted.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    return _evaluate(tree.body)


def _evaluate(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_MAGNITUDE:
            return value
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _evaluate(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _evaluate(node.left), _evaluate(node.right)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod):
        if right == 0:
            return None
        quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)  # C-style, as the shell
        result = quotient if not isinstance(node.op, ast.Mod) else left - quotient * right
    elif type(node.op) in _OPERATORS:
        result = _OPERATORS[type(node.op)](left, right)
    else:
        return None
    return result if abs(result) <= MAX_MAGNITUDE else None
