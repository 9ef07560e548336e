"""The operations objects on the local cluster (scripts/cluster.sh with the add-ons of scripts/addons.sh): the API
server validates everything the default stack and the ACK example render against the CRDs of the pinned KEDA,
Prometheus operator, Gateway API and Inference Extension releases, and the real KEDA operator scales a
LeaderWorkerSet from zero to one group when a queue fills and back to zero after the cooldown."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scratch import ROOT, scratch_project

pytestmark = pytest.mark.e2e

KUBECONFIG = ROOT / ".tools" / "cluster" / "kubeconfig"
OPERATIONS_KINDS = {"ScaledObject", "PodMonitor", "ServiceMonitor", "InferencePool", "HTTPRoute"}


def run(*command: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), env=env, input=stdin, capture_output=True, text=True, timeout=600)


def script(name: str, command: str) -> None:
    result = run(str(ROOT / "scripts" / name), command, env=dict(os.environ, LWS="full"))
    if result.returncode != 0:
        pytest.fail(f"scripts/{name} {command} failed:\n{result.stderr}")


def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(str(ROOT / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args, stdin=stdin)


def get(*args: str) -> Any:
    result = kubectl("get", *args, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    script("cluster.sh", "down")  # left over from an interrupted run
    script("cluster.sh", "up")
    try:
        script("addons.sh", "up")
        yield
    finally:
        script("addons.sh", "down")
        script("cluster.sh", "down")


def render(tmp: Path, stack_file: Path) -> list[dict[str, Any]]:
    """What `pulumi up` of a stack writes in render mode."""
    stack_config = yaml.safe_load(stack_file.read_text())
    stack_config.pop("encryptionsalt", None)
    config = stack_config["config"]
    config["lws-inference:target"] = {"renderDir": "rendered"}
    oss = config["lws-inference:cluster"].get("storage", {}).get("oss")
    if oss is not None:
        oss["credentialsSecret"] = "oss-model-credentials"  # an existing Secret: no AccessKey needed here
    project = scratch_project(tmp, stack_config)
    project.pulumi("up", "--yes", "--skip-preview")
    return project.manifests()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    found = render(tmp_path_factory.mktemp("dev"), ROOT / "Pulumi.dev.yaml")
    found += render(tmp_path_factory.mktemp("ack"), ROOT / "examples" / "Pulumi.ack.yaml")
    return found


def server_dry_run(obj: dict[str, Any]) -> str | None:
    """The API server's verdict on the object as it is (admission and schema validation, nothing stored): created,
    or, where scripts/cluster.sh installed one of that name (the LWS CRD and webhooks), put in its place whole
    rather than merged into it."""
    created = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(obj))
    if created.returncode != 0 and "AlreadyExists" in created.stderr:
        created = kubectl("replace", "--dry-run=server", "-f", "-", stdin=json.dumps(obj))
    return None if created.returncode == 0 else created.stderr.strip()


def test_the_stacks_render_every_operations_kind(rendered: list[dict[str, Any]]) -> None:
    assert {o["kind"] for o in rendered} >= OPERATIONS_KINDS


def test_the_api_server_accepts_every_rendered_object(cluster: None, rendered: list[dict[str, Any]]) -> None:
    namespaces = {o["metadata"]["namespace"] for o in rendered if o["metadata"].get("namespace")}
    for namespace in sorted(namespaces):
        kubectl("create", "namespace", namespace)
    refused = {}
    for obj in rendered:
        if obj["kind"] == "Namespace":
            continue
        verdict = server_dry_run(obj)
        if verdict is not None:
            refused[f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"] = verdict
    assert refused == {}


def test_the_crds_really_validate(cluster: None, rendered: list[dict[str, Any]]) -> None:
    """A control: the same objects with one field of the wrong type are refused by the schema."""
    by_kind = {o["kind"]: o for o in rendered}
    scaled = json.loads(json.dumps(by_kind["ScaledObject"]))
    scaled["spec"]["minReplicaCount"] = "none"
    pool = json.loads(json.dumps(by_kind["InferencePool"]))
    del pool["spec"]["targetPorts"]
    monitor = json.loads(json.dumps(by_kind["PodMonitor"]))
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "soon"
    for broken in (scaled, pool, monitor):
        assert server_dry_run(broken) is not None, broken["kind"]


# ---- the KEDA operator scales a LeaderWorkerSet 0 -> 1 -> 0 -------------------------------------


class Queue(BaseHTTPRequestHandler):
    """A metrics-api endpoint: {"queue": N}, the waiting requests a scaler reads."""

    depth = 0

    def do_GET(self) -> None:
        body = json.dumps({"queue": Queue.depth}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def queue() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Queue)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()


def replicas(name: str) -> int | None:
    lws = get("leaderworkerset", "-n", "ops-e2e", name)
    return None if lws is None else int(lws["spec"].get("replicas", 1))


def wait_replicas(name: str, wanted: int, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if replicas(name) == wanted:
            return time.monotonic() - start
        time.sleep(1)
    log = (ROOT / ".tools" / "cluster" / "keda" / "keda-operator.log").read_text()[-3000:]
    pytest.fail(f"LeaderWorkerSet {name} did not reach {wanted} replicas in {seconds}s (now {replicas(name)}):\n{log}")


def test_keda_scales_a_leaderworkerset_from_zero_and_back(cluster: None, queue: str) -> None:
    container = {"name": "engine", "image": "registry.example/engine:v1"}
    lws = {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "queue-scaled", "namespace": "ops-e2e"},
        "spec": {
            "replicas": 0,
            "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [container]}}},
        },
    }
    cooldown = 10
    target = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": "queue-scaled"}
    queue_metric = {"url": queue, "valueLocation": "queue", "targetValue": "4", "activationTargetValue": "0"}
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "queue-scaled", "namespace": "ops-e2e"},
        "spec": {
            "scaleTargetRef": target,
            "minReplicaCount": 0,
            "maxReplicaCount": 1,
            "pollingInterval": 1,
            "cooldownPeriod": cooldown,
            "triggers": [{"type": "metrics-api", "metadata": queue_metric}],
        },
    }
    kubectl("create", "namespace", "ops-e2e")
    for obj in (lws, scaled):
        created = kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(obj))
        assert created.returncode == 0, created.stderr

    time.sleep(5)
    assert replicas("queue-scaled") == 0, "scaled up with an empty queue"
    Queue.depth = 3
    up = wait_replicas("queue-scaled", 1, 90)
    pods = get("pods", "-n", "ops-e2e", "-l", "leaderworkerset.sigs.k8s.io/name=queue-scaled")
    deadline = time.monotonic() + 60
    while len(pods["items"]) < 2 and time.monotonic() < deadline:  # the controller creates the group's two pods
        time.sleep(1)
        pods = get("pods", "-n", "ops-e2e", "-l", "leaderworkerset.sigs.k8s.io/name=queue-scaled")
    assert len(pods["items"]) == 2
    Queue.depth = 0
    down = wait_replicas("queue-scaled", 0, 90 + cooldown)
    assert down >= cooldown - 1, f"scaled to zero after {down:.0f}s, before the {cooldown}s cooldown"
    print(f"0 -> 1 group {up:.1f}s after the queue filled; 1 -> 0 {down:.1f}s after it emptied")
