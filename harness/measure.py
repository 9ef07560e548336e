"""Paired timing of commands on a shared machine: every variant runs once per round (A B A B ...), and each is
reported as the median of its rounds, so drift from other work on the machine hits all variants alike. Besides
wall-clock time: the CPU of the command's own process (the Pulumi CLI) against the CPU of everything it ran (language
host, program, providers, policy pack), and the bytes the CLI wrote into its automatic log directory."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    seconds: float
    own_cpu: float
    """CPU seconds of the command's process alone (for `pulumi`: the CLI and engine)."""
    total_cpu: float
    """CPU seconds of the process and every descendant it waited for (plugins, the program, the pack)."""
    log_bytes: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def log_size(logs: Path | None) -> int:
    if logs is None or not logs.is_dir():
        return 0
    return sum(f.stat().st_size for f in logs.iterdir() if f.is_file())


def measured(command: Sequence[str], cwd: Path, env: Mapping[str, str], logs: Path | None = None) -> Run:
    """Runs `command` to its end. Its own CPU is read from /proc while it is a zombie (os.waitid with WNOWAIT):
    then its counters are final and it has reaped its children, whose CPU the reaping adds to ours."""
    logs_before = log_size(logs)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=out, stderr=err, text=True)
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        seconds = time.perf_counter() - start
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)
        returncode = process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    return Run(seconds, own, total, log_size(logs) - logs_before, returncode, stdout, stderr)


@dataclass(frozen=True)
class Summary:
    seconds: float
    own_cpu_share: float
    """Median over rounds of own CPU / total CPU."""
    log_bytes: float
    runs: tuple[Run, ...]


def paired(variants: Mapping[str, Callable[[], Run]], rounds: int) -> dict[str, Summary]:
    """Runs every variant once per round, in the same order each round, and summarises each by its medians."""
    results: dict[str, list[Run]] = {name: [] for name in variants}
    for round_ in range(rounds):
        for name, run in variants.items():
            results[name].append(run())
            print(f"  [round {round_ + 1}] {name}: {results[name][-1].seconds:.1f} s", file=sys.stderr, flush=True)
    return {name: summary(runs) for name, runs in results.items()}


def summary(runs: Sequence[Run]) -> Summary:
    return Summary(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.own_cpu / r.total_cpu if r.total_cpu else 0.0 for r in runs),
        statistics.median(r.log_bytes for r in runs),
        tuple(runs),
    )
