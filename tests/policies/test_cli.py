"""`lws-guard check` on plain YAML: the same verdicts as the pack through the pulumi_policy wrappers, exit codes
a CI can rely on, and text, JSON and SARIF output; bad input is reported, never a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from lws_guard import cli
from lws_guard.pack import resource_policies, stack_policies
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from scripts import policy_reference
from tests.policies.helpers import CONFIG_DIR, floats, run_resource_policy, run_stack_policy

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
# The fixtures, and the manifest corpus of the policy-accuracy work when it is there.
YAML_FILES = sorted(p for d in ("fixtures", "corpus") for p in (HERE / d).rglob("*") if p.suffix in (".yaml", ".yml"))
STACKS = ("dev", "ack", "cce")

Verdict = tuple[str, str, str]  # policy, level, message


def run(args: Sequence[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(args), stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def run_json(args: Sequence[str], stdin: str = "") -> tuple[int, dict[str, Any]]:
    code, out = run(["check", "--format", "json", *args], stdin)
    return code, json.loads(out)


def write(tmp_path: Path, name: str, docs: Sequence[Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return path


# ---- the same verdicts as the pack ---------------------------------------------------------------


def objects_of(path: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects of a file as the provider sends them, read independently of the command:
    documents and List items, namespaced ones without a namespace in `default`."""
    found: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            found += [item for item in doc["items"] if isinstance(item, dict)]
        elif isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("apiVersion"), str):
            found.append(doc)
    for obj in found:
        if obj["kind"] not in cli.CLUSTER_SCOPED and not (obj.get("metadata") or {}).get("namespace"):
            obj["metadata"] = {**(obj.get("metadata") or {}), "namespace": "default"}
    return found


def level(policy: Any) -> str:
    return str((policy.enforcement_level or EnforcementLevel.MANDATORY).value)


def through_the_wrappers(objs: list[dict[str, Any]], config: Mapping[str, Any]) -> Counter[Verdict]:
    """What `pulumi preview --policy-pack` would report: each policy's validate with its own config object."""
    verdicts: Counter[Verdict] = Counter()
    for policy in resource_policies():
        for obj in objs:
            for message in run_resource_policy(policy, floats(obj), config.get(policy.name, {})):
                verdicts[(policy.name, level(policy), message)] += 1
    for stack_policy in stack_policies():
        for message in run_stack_policy(stack_policy, [floats(o) for o in objs], config.get(stack_policy.name, {})):
            verdicts[(stack_policy.name, level(stack_policy), message)] += 1
    return verdicts


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(HERE)))
def test_the_command_gives_the_pack_verdicts(path: Path, stack: str) -> None:
    config_file = CONFIG_DIR / f"{stack}.json"
    code, report = run_json(["--config", str(config_file), str(path)])
    try:
        objs = objects_of(path)
    except yaml.YAMLError:  # a corpus file may be broken on purpose: the command must say so, not judge it
        assert code == 2 and any(f["policy"] == cli.INVALID_INPUT for f in report["findings"])
        return
    pack_policies = {p.name for p in [*resource_policies(), *stack_policies()]}
    from_command = Counter(
        (f["policy"], f["level"], f["message"]) for f in report["findings"] if f["policy"] in pack_policies
    )
    assert from_command == through_the_wrappers(objs, json.loads(config_file.read_text()))


def test_the_fixtures_say_what_their_headers_expect() -> None:
    """The CCE walkthrough's literal token and :latest image, and nothing mandatory in the ACK examples."""
    _, cce = run_json(["--stack", "cce", str(HERE / "fixtures" / "cce_llama405b.yaml")])
    assert {(f["level"], f["policy"]) for f in cce["findings"]} == {
        ("mandatory", "no-plaintext-secrets"),
        ("advisory", "image-pinned"),
        ("advisory", "lws-autoscaling"),  # two groups and no autoscaler
    }
    for name in ("ack_qwen3_vllm", "ack_qwen3_sglang", "ack_oss_model_volume"):
        code, ack = run_json(["--stack", "ack", str(HERE / "fixtures" / f"{name}.yaml")])
        assert code == 0 and all(f["level"] != "mandatory" for f in ack["findings"]), name


def test_every_policy_of_the_pack_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No list of policies in the command: a policy added to the pack is run and reported."""
    extra = ResourceValidationPolicy(
        name="always-says-hello",
        description="A policy the command does not know by name.",
        validate=lambda args, report: report(f"hello {args.name}", None),
        enforcement_level=EnforcementLevel.ADVISORY,
    )
    monkeypatch.setattr(cli, "resource_policies", lambda: [*resource_policies(), extra])
    code, report = run_json(["-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\n")
    assert code == 0
    assert [(f["policy"], f["message"]) for f in report["findings"]] == [("always-says-hello", "hello n/c")]


def test_a_policy_that_fails_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: Any, report: Any) -> None:
        raise KeyError("spec")

    failing = ResourceValidationPolicy(name="broken", description="Raises.", validate=broken)
    monkeypatch.setattr(cli, "resource_policies", lambda: [failing])
    code, out = run(["check", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    assert code == 2
    assert "error policy-failed: broken could not judge Pod default/p: KeyError: 'spec'" in out


# ---- reading YAML --------------------------------------------------------------------------------

HELM_TEMPLATE = """---
# Source: lws/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: lws-controller-manager
  namespace: lws-system
---
---
# Source: lws/templates/pv.yaml
apiVersion: v1
kind: PersistentVolume
metadata:
  name: models
spec:
  persistentVolumeReclaimPolicy: Delete
  nfs: {server: 10.0.0.9, path: /models}
"""


def test_helm_template_output_from_stdin_names_document_and_line() -> None:
    code, out = run(["check", "-"], HELM_TEMPLATE)
    assert code == 0  # advisory only
    assert out.splitlines() == [
        "<stdin>:11: document 3: PersistentVolume models: advisory model-pv-reclaim: the nfs model volume has "
        "persistentVolumeReclaimPolicy Delete, so releasing its claim may delete the model files; use Retain"
    ]


def test_a_list_is_checked_item_by_item(tmp_path: Path) -> None:
    group = policy_reference.group()
    broken = policy_reference.group()
    broken["metadata"]["name"] = "broken"
    broken["spec"]["leaderWorkerTemplate"]["size"] = 1  # TP x PP = 16 ranks on 8 GPUs: never starts
    path = write(tmp_path, "list.yaml", [{"apiVersion": "v1", "kind": "List", "items": [group, broken]}])
    code, report = run_json([str(path)])
    assert code == 1
    [finding] = report["findings"]
    assert finding["policy"] == "parallelism" and finding["objects"] == ["LeaderWorkerSet inference/broken"]
    [location] = finding["locations"]
    assert (location["document"], location["item"]) == (1, 2)
    assert path.read_text().splitlines()[location["line"] - 1].lstrip("- ").startswith("apiVersion")


def test_a_directory_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    write(tmp_path / "a" / "b", "pv.yml", [policy_reference.model_volume("Delete")])
    write(tmp_path / "a", "group.yaml", policy_reference.good_stack())
    (tmp_path / "a" / "notes.txt").write_text("not yaml: [")
    code, report = run_json([str(tmp_path)])
    assert code == 0
    assert report["objects"] == 4 and len(report["files"]) == 2
    assert [f["policy"] for f in report["findings"]] == ["model-pv-reclaim"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("kind: [unclosed\n", "invalid YAML"),
        ("apiVersion: v1\nkind: Pod\n  bad: indent\n", "invalid YAML"),
        ("- a\n- b\n", "not a Kubernetes object: a YAML list"),
        ("just text\n", "not a Kubernetes object: a YAML string"),
        ("metadata: {name: x}\n", "not a Kubernetes object: no apiVersion and no kind"),
        ("apiVersion: v1\nkind: 3\n", "not a Kubernetes object: no kind"),
    ],
)
def test_input_that_is_not_kubernetes_yaml_is_reported(text: str, said: str) -> None:
    code, out = run(["check", "-"], text)
    assert code == 2
    assert said in out and "error invalid-input" in out


def test_objects_before_a_yaml_error_are_still_checked() -> None:
    text = yaml.safe_dump(policy_reference.model_volume("Delete")) + "---\nkind: [\n"
    code, report = run_json(["-"], text)
    assert code == 2
    assert [f["policy"] for f in report["findings"]] == ["model-pv-reclaim", cli.INVALID_INPUT]


def test_objects_without_a_namespace_are_where_the_apply_puts_them() -> None:
    volume = yaml.safe_dump(policy_reference.model_volume("Delete"))
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n" + volume
    says_name = ResourceValidationPolicy(
        name="names", description="Says the namespace.", validate=lambda args, report: report(args.name, None)
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "resource_policies", lambda: [says_name])
        _, report = run_json(["-n", "inference", "-"], text)
    assert [f["message"] for f in report["findings"]] == ["inference/p", "models"]  # a PersistentVolume has none


def test_unknown_kinds_are_noted_and_change_no_verdict() -> None:
    text = (
        "apiVersion: scheduling.volcano.sh/v1beta1\nkind: PodGroup\nmetadata: {name: g}\n---\n"
        "apiVersion: leaderworkerset.x-k8s.io/v1alpha1\nkind: LeaderWorkerSet\nmetadata: {name: old}\n"
    )
    code, report = run_json(["-"], text)
    notes = [f for f in report["findings"] if f["policy"] == cli.UNKNOWN_KIND]
    assert [n["objects"] for n in notes] == [["PodGroup default/g"], ["LeaderWorkerSet default/old"]]
    assert "served as leaderworkerset.x-k8s.io/v1" in notes[1]["message"]
    assert code == 0


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    code, out = run(["check", str(tmp_path / "missing.yaml")])
    assert code == 2 and "missing.yaml:1: error invalid-input: cannot read it" in out


# ---- exit codes and config -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objs", "code"),
    [
        (policy_reference.good_stack(), 0),
        ([policy_reference.model_volume("Delete")], 0),
        ([policy_reference.controller("0.8.0")], 1),
    ],
    ids=["clean", "advisory", "mandatory"],
)
def test_exit_codes(tmp_path: Path, objs: list[dict[str, Any]], code: int) -> None:
    assert run(["check", str(write(tmp_path, "x.yaml", objs))])[0] == code


def test_the_stack_policy_sees_every_object_of_the_run(tmp_path: Path) -> None:
    """A controller moved in a maintenance window while a group remains, as two files of one run."""
    (tmp_path / "Pulumi.yaml").write_text("name: lws-inference\n")
    config = tmp_path / "window.json"
    config.write_text(json.dumps({p: {"lwsVersion": "0.7.0", "maintenance": True} for p in ("no-online-upgrade",
                                  "no-online-upgrade-drained")}))  # fmt: skip
    group = write(tmp_path, "group.yaml", [policy_reference.group()])
    controller = write(tmp_path, "controller.yaml", [policy_reference.controller("0.8.0")])
    code, report = run_json(["--config", str(config), str(group), str(controller)])
    assert code == 1
    [finding] = [f for f in report["findings"] if f["level"] == "mandatory"]
    assert finding["policy"] == "no-online-upgrade-drained"
    assert sorted(finding["objects"]) == [
        "Deployment lws-system/lws-controller-manager",
        "LeaderWorkerSet inference/llama-405b",
    ]


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"shared-memory": {"shmBaseGib": 3}}, "shared-memory: unknown key shmBaseGib"),
        ({"shared-memory": {"shmBaseGiB": "3"}}, "shared-memory.shmBaseGiB: must be a number"),
        ({"no-online-upgrade": {"lwsVersion": "main"}}, "no-online-upgrade.lwsVersion: must match"),
        ({"gpu-memory": {"gpuMemoryMiB": {"X": 0}}}, "gpu-memory.gpuMemoryMiB: X must be at least 1"),
        ({"gpu-memroy": {}}, "no policy gpu-memroy"),
        ({"all": "loud"}, "enforcement level 'loud'"),
    ],
)
def test_a_wrong_policy_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict[str, Any], said: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert run(["check", "--config", str(path), str(HERE / "fixtures")])[0] == 2
    assert said in capsys.readouterr().err


def test_levels_from_the_config_as_pulumi_applies_them(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    objs = write(tmp_path, "x.yaml", [policy_reference.controller("0.8.0"), policy_reference.model_volume("Delete")])
    path.write_text(json.dumps({"all": "advisory", "model-pv-reclaim": "disabled"}))
    code, report = run_json(["--config", str(path), str(objs)])
    assert code == 0
    assert [(f["policy"], f["level"]) for f in report["findings"]] == [("no-online-upgrade", "advisory")]
    path.write_text(json.dumps({"model-pv-reclaim": {"enforcementLevel": "mandatory"}}))
    assert run_json(["--config", str(path), str(objs)])[1]["findings"][-1]["level"] == "mandatory"


def test_the_stack_option_is_the_generated_config_file() -> None:
    fixtures = str(HERE / "fixtures")
    for stack in STACKS:
        by_stack = run_json(["--stack", stack, fixtures])
        by_file = run_json(["--config", str(CONFIG_DIR / f"{stack}.json"), fixtures])
        assert by_stack == by_file


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check"]) == 2
    assert "name a YAML file, a directory or - (stdin)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        cli.main(["check", "--stack", "dev", "--config", "x.json", "f.yaml"])
    assert stopped.value.code == 2


# ---- SARIF -----------------------------------------------------------------------------------------

# SARIF 2.1.0 (OASIS, sarif-schema-2.1.0.json): for each object this command writes, the properties it
# requires and the ones it allows (every object of the schema forbids any other property).
SARIF_OBJECTS: dict[str, tuple[set[str], set[str]]] = {
    "log": ({"version", "runs"}, {"$schema", "version", "runs", "inlineExternalProperties", "properties"}),
    "run": ({"tool"}, {"tool", "invocations", "results", "artifacts", "language", "properties"}),
    "tool": ({"driver"}, {"driver", "extensions", "properties"}),
    "driver": ({"name"}, {"name", "fullName", "version", "semanticVersion", "informationUri", "rules", "properties"}),
    "rule": ({"id"}, {"id", "name", "shortDescription", "fullDescription", "defaultConfiguration", "helpUri", "help"}),
    "multiformatMessageString": ({"text"}, {"text", "markdown", "properties"}),
    "reportingConfiguration": (set(), {"enabled", "level", "rank", "parameters", "properties"}),
    "invocation": ({"executionSuccessful"}, {"executionSuccessful", "exitCode", "toolExecutionNotifications"}),
    "result": ({"message"}, {"ruleId", "ruleIndex", "rule", "kind", "level", "message", "locations", "properties"}),
    "message": (set(), {"text", "markdown", "id", "arguments", "properties"}),
    "location": (set(), {"id", "physicalLocation", "logicalLocations", "message", "annotations", "properties"}),
    "physicalLocation": (set(), {"address", "artifactLocation", "region", "contextRegion", "properties"}),
    "artifactLocation": (set(), {"uri", "uriBaseId", "index", "description", "properties"}),
    "region": (set(), {"startLine", "startColumn", "endLine", "endColumn", "charOffset", "snippet", "message"}),
    "logicalLocation": (set(), {"name", "index", "fullyQualifiedName", "decoratedName", "kind", "parentIndex"}),
}
LEVELS = {"none", "note", "warning", "error"}


def conforms(value: Any, kind: str) -> None:
    required, allowed = SARIF_OBJECTS[kind]
    assert isinstance(value, dict), kind
    assert required <= set(value), f"{kind} lacks {required - set(value)}"
    assert set(value) <= allowed, f"{kind} has {set(value) - allowed}"


def test_sarif_follows_the_2_1_0_schema(tmp_path: Path) -> None:
    objs = write(tmp_path, "x y.yaml", [policy_reference.controller("0.8.0"), policy_reference.model_volume("Delete")])
    code, out = run(["check", "--format", "sarif", "--stack", "dev", str(objs), "-"], "- not an object\n")
    log = json.loads(out)
    conforms(log, "log")
    assert log["version"] == "2.1.0"
    [run_] = log["runs"]
    conforms(run_, "run")
    conforms(run_["tool"], "tool")
    driver = run_["tool"]["driver"]
    conforms(driver, "driver")
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids))
    assert {p.name for p in [*resource_policies(), *stack_policies()]} <= set(ids)
    for rule in driver["rules"]:
        conforms(rule, "rule")
        conforms(rule["shortDescription"], "multiformatMessageString")
        conforms(rule["defaultConfiguration"], "reportingConfiguration")
        assert rule["defaultConfiguration"]["level"] in LEVELS
    [invocation] = run_["invocations"]
    conforms(invocation, "invocation")
    assert invocation["executionSuccessful"] is False  # the stdin document is not an object
    assert {(r["ruleId"], r["level"]) for r in run_["results"]} == {
        ("no-online-upgrade", "error"), ("model-pv-reclaim", "warning"), ("invalid-input", "error"),
    }  # fmt: skip
    for result in run_["results"]:
        conforms(result, "result")
        conforms(result["message"], "message")
        assert result["message"]["text"]
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in LEVELS
        for location in result["locations"]:
            conforms(location, "location")
            conforms(location["physicalLocation"], "physicalLocation")
            conforms(location["physicalLocation"]["artifactLocation"], "artifactLocation")
            conforms(location["physicalLocation"]["region"], "region")
            assert location["physicalLocation"]["region"]["startLine"] >= 1
            assert " " not in location["physicalLocation"]["artifactLocation"]["uri"]  # a URI reference
            for logical in location.get("logicalLocations", []):
                conforms(logical, "logicalLocation")
    assert code == 2


# ---- the entry points --------------------------------------------------------------------------------


def test_python_dash_m_lws_guard_from_the_project_root() -> None:
    """As the README and the workflow run it: only policies/ on the path; plan is found from the checkout."""
    env = {**os.environ, "PYTHONPATH": "policies"}
    result = subprocess.run(
        [sys.executable, "-m", "lws_guard", "check", "--stack", "cce", "tests/policies/fixtures/cce_llama405b.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "mandatory no-plaintext-secrets" in result.stdout
    assert result.stderr.strip() == "1 objects in 1 files: 2 mandatory, 3 advisory"


def test_the_console_script_is_declared() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["lws-guard"] == "lws_guard.cli:main"


def test_a_stack_alone_checks_its_manifests_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--stack` without PATH: the files the stack lists in `manifests`, with the stack's policy config."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    document = yaml.safe_load((ROOT / "examples" / "Pulumi.ack.yaml").read_text())
    document["config"]["lws-inference:manifests"] = ["hand/written.yaml"]
    (tmp_path / "Pulumi.handwritten.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "hand").mkdir()
    write(tmp_path / "hand", "written.yaml", [policy_reference.group()])  # 8 GPUs of the ACK default L20 per pod
    monkeypatch.chdir(tmp_path)
    code, report = run_json(["--stack", "handwritten"])
    assert report["files"] == ["hand/written.yaml"]
    assert code == 1
    assert {f["policy"] for f in report["findings"] if f["level"] == "mandatory"} == {"gpu-memory"}


def test_the_readme_quotes_a_real_run() -> None:
    """The README's example is this command's output on the CCE test data, and its exit code."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- yaml-check-example:begin -->")[1].split("<!-- yaml-check-example:end -->")[0]
    lines = block.strip().removeprefix("```console").removesuffix("```").strip().splitlines()
    command, *output, echo, code = lines
    assert command.startswith("$ ") and echo == "$ echo $?"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", command.removeprefix("$ ") + " 2>&1"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.stdout.splitlines() == output
    assert str(result.returncode) == code
