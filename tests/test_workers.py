"""`TEST_WORKERS=N make test`: what runs together in one pytest-xdist worker (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import work_unit

ROOT = Path(__file__).resolve().parents[1]

RECORDING_TEST = """
import json, os, pathlib, time

def test_{name}():
    time.sleep(0.3)  # long enough for the other worker to take work
    record = pathlib.Path(os.environ["WORKER_RECORD"]) / "{module}-{name}.json"
    record.write_text(json.dumps(os.environ["PYTEST_XDIST_WORKER"]))
"""


def test_the_cluster_modules_share_one_unit_and_other_modules_are_a_unit_each() -> None:
    assert work_unit("tests/e2e/test_local_cluster.py::test_up") == work_unit("tests/e2e/test_operations.py::test_x")
    assert work_unit("tests/engines/test_read_flags.py::test_a[x::y]") == "engine-parsers"
    assert work_unit("tests/engine/test_data_safety.py::test_a[p]") == "tests/engine/test_data_safety.py"
    assert work_unit("tests/test_plan.py::TestX::test_y") == "tests/test_plan.py"


def test_two_workers_never_run_cluster_modules_at_the_same_time(tmp_path: Path) -> None:
    """The real scheduler, in a scratch tree: both e2e modules in one worker; without the conftest's scheduler
    (pytest 9.2 drops xdist_group marks) they would be spread over both."""
    (tmp_path / "tests" / "e2e").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "tests" / "conftest.py")
    for module in ("test_first", "test_second"):
        tests = "".join(RECORDING_TEST.format(module=module, name=f"t{i}") for i in range(3))
        (tmp_path / "tests" / "e2e" / f"{module}.py").write_text(tests)
    (tmp_path / "tests" / "test_unit.py").write_text(RECORDING_TEST.format(module="unit", name="t0"))
    records = tmp_path / "records"
    records.mkdir()
    env = dict(os.environ, WORKER_RECORD=str(records))
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run([*command, "tests"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    workers = {path.stem: json.loads(path.read_text()) for path in records.iterdir()}
    cluster_workers = {worker for test, worker in workers.items() if not test.startswith("unit-")}
    assert len(workers) == 7
    assert len(cluster_workers) == 1, workers
