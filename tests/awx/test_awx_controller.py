"""The AWX objects (awx/controller.yml) against the repo: templates name playbooks and inventories
that exist, surveys agree with the roles' and playbooks' argument specs, the workflow is a sound
graph, the execution environment carries every collection and Python import the playbooks use,
and the tool that runs templates the way AWX does behaves like AWX at launch."""
import ast
import copy
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run

sys.path.insert(0, str(ROOT / "tools"))
import awx_runner  # noqa: E402

CONTROLLER = awx_runner.load_controller()
EE = yaml.safe_load((ROOT / "awx/execution-environment.yml").read_text())
SPEC_FILES = sorted(ROOT.glob("roles/*/meta/argument_specs.yml")) + [ROOT / "playbooks/meta/argument_specs.yml"]
# Survey question type -> argument spec types it can feed.
SURVEY_TYPES = {"text": {"str", "path", "raw"}, "textarea": {"str", "raw"}, "password": {"str", "raw"},
                "multiplechoice": {"str", "raw"}, "multiselect": {"list", "raw"},
                "integer": {"int", "raw"}, "float": {"float", "raw"}}


def declarations():
    """variable -> [(where, option spec)] over every role's and the playbooks' argument specs."""
    out = {}
    for path in SPEC_FILES:
        for entry, spec in yaml.safe_load(path.read_text())["argument_specs"].items():
            for name, option in (spec.get("options") or {}).items():
                out.setdefault(name, []).append((f"{path.relative_to(ROOT)}:{entry}", option))
    return out


def defaults_of(var, inventory_source):
    """The value a variable has without the survey: its spec default, a role default, else the
    template inventory's group_vars. None when nothing sets it."""
    for _, option in declarations().get(var, []):
        if "default" in option:
            return option["default"]
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")) + sorted(ROOT.glob("roles/*/defaults/main/*.yml")):
        values = yaml.safe_load(path.read_text()) or {}
        if var in values:
            return values[var]
    group_vars = ROOT / inventory_source.rsplit("/", 1)[0] / "group_vars/all.yml"
    if group_vars.exists():
        return (yaml.safe_load(group_vars.read_text()) or {}).get(var)
    return None


def survey_problems(survey, inventory_source):
    """Every way the survey drifts from the argument specs (empty when it agrees)."""
    problems, decl = [], declarations()
    for question in survey["spec"]:
        var, kind = question["variable"], question["type"]
        if var not in decl:
            problems.append(f"{var}: declared in no role's or playbook's argument specs")
            continue
        for where, option in decl[var]:
            spec_type = option.get("type", "str")
            if spec_type not in SURVEY_TYPES[kind]:
                problems.append(f"{var}: survey type {kind}, {where} type {spec_type}")
            if "choices" in option:
                if kind not in ("multiplechoice", "multiselect"):
                    problems.append(f"{var}: {where} allows only {option['choices']}, the survey asks free {kind}")
                elif not set(awx_runner._choices(question)) <= set(option["choices"]):
                    problems.append(f"{var}: choices {awx_runner._choices(question)} not within {where} {option['choices']}")
            if option.get("no_log") and kind != "password":
                problems.append(f"{var}: no_log in {where}, the survey shows it as {kind}")
        if kind in ("multiplechoice", "multiselect") and "default" in question:
            defaults = question["default"] if kind == "multiselect" else [question["default"]]
            if not set(defaults) <= set(awx_runner._choices(question)):
                problems.append(f"{var}: default {question['default']!r} is not one of the survey's choices")
        expected = defaults_of(var, inventory_source)
        if "default" in question and expected is not None and not (isinstance(expected, str) and "{{" in expected):
            if question["default"] != expected:
                problems.append(f"{var}: survey default {question['default']!r}, the playbooks' default {expected!r}")
        low, high = question.get("min", -(2**63)), question.get("max", 2**63)
        if kind == "integer" and "default" in question and not low <= question["default"] <= high:
            problems.append(f"{var}: default {question['default']} outside {question.get('min')}..{question.get('max')}")
    return problems


def surveys_with_inventory():
    """(survey name, inventory source path) of every template and workflow that uses a survey."""
    inventories = {i["name"]: i["source_path"] for i in CONTROLLER["awx_inventories"]}
    users = CONTROLLER["awx_job_templates"] + CONTROLLER["awx_workflows"]
    return sorted({(u["survey"], inventories[u["inventory"]]) for u in users if u.get("survey")})


# -- templates, inventories, surveys --------------------------------------------------------------
@pytest.mark.parametrize("template", CONTROLLER["awx_job_templates"], ids=lambda t: t["name"])
def test_template_names_a_playbook_and_an_inventory_that_exist(template):
    assert (ROOT / template["playbook"]).is_file(), template["playbook"]
    inventories = {i["name"]: i for i in CONTROLLER["awx_inventories"]}
    assert template["inventory"] in inventories
    assert (ROOT / inventories[template["inventory"]]["source_path"]).is_file()
    assert template.get("survey") is None or template["survey"] in CONTROLLER["awx_surveys"]


def test_the_four_templates_run_the_playbooks_the_issue_names():
    assert {t["name"]: t["playbook"] for t in CONTROLLER["awx_job_templates"]} == {
        "fraudstream – deploy": "site.yml", "fraudstream – verify": "playbooks/verify.yml",
        "fraudstream – alert drill": "playbooks/drill.yml", "fraudstream – teardown": "teardown.yml"}


@pytest.mark.parametrize("inv", CONTROLLER["awx_inventories"], ids=lambda i: i["name"])
def test_inventory_sources_are_the_repo_inventories(inv):
    """local, k8s and eks; a source may be missing only while marked optional (eks: issue 14)."""
    path = ROOT / inv["source_path"]
    assert path.is_file() or inv.get("optional"), f"{inv['source_path']} does not exist"
    if path.is_file():
        hosts = yaml.safe_load(path.read_text())
        assert "fraudstream" in hosts["all"]["children"], "the playbooks run on the fraudstream group"


def test_inventories_cover_local_k8s_eks():
    assert {i["source_path"].split("/")[1] for i in CONTROLLER["awx_inventories"]} == {"local", "k8s", "eks"}


@pytest.mark.parametrize("survey,inventory_source", surveys_with_inventory())
def test_survey_agrees_with_argument_specs(survey, inventory_source):
    assert survey_problems(CONTROLLER["awx_surveys"][survey], inventory_source) == []


def test_deploy_survey_asks_what_the_issue_lists():
    variables = {q["variable"] for q in CONTROLLER["awx_surveys"]["deploy"]["spec"]}
    assert variables == {"fraudstream_target", "fraudstream_cluster_name", "eks_cluster_region",
                         "eks_cluster_node_count", "fraud_workloads_scorer_replicas"}
    assert all(q.get("required") and "default" in q for q in CONTROLLER["awx_surveys"]["deploy"]["spec"])


def _drift(var, **change):
    survey = copy.deepcopy(CONTROLLER["awx_surveys"]["deploy"])
    question = next(q for q in survey["spec"] if q["variable"] == var)
    question.update(change)
    return survey


@pytest.mark.parametrize("survey", [
    _drift("fraudstream_target", choices=["local", "kubernetes", "eks"]),       # a choice no role takes
    _drift("fraudstream_target", type="text"),                                   # free text for a choice
    _drift("fraudstream_target", default="kubernetes"),                          # not the inventory's target
    _drift("fraud_workloads_scorer_replicas", default=2),                        # not the role's default
    _drift("fraud_workloads_scorer_replicas", type="text"),                      # type
    _drift("eks_cluster_node_count", variable="eks_node_count"),                 # renamed in the survey only
    _drift("eks_cluster_region", default="mars-north-1"),                        # default outside the choices
], ids=["choice", "type-choice", "default-inventory", "default-role", "type", "renamed", "default-choice"])
def test_a_drifting_survey_fails(survey):
    assert survey_problems(survey, "inventories/local/hosts.yml")


def test_scorer_replicas_survey_stops_at_the_partitions():
    """More scorers than partitions of fraud-transactions would idle: the survey's max is that count."""
    defaults = yaml.safe_load((ROOT / "roles/fraud_workloads/defaults/main/main.yml").read_text())
    partitions = next(t["partitions"] for t in defaults["fraud_workloads_topics"] if t["name"] == "fraud-transactions")
    question = next(q for q in CONTROLLER["awx_surveys"]["deploy"]["spec"] if q["variable"] == "fraud_workloads_scorer_replicas")
    assert question["min"] == 1 and question["max"] == partitions


def test_teardown_survey_requires_the_cluster_name():
    template = awx_runner.job_template(CONTROLLER, "fraudstream – teardown")
    (question,) = CONTROLLER["awx_surveys"][template["survey"]]["spec"]
    assert question["variable"] == "confirm_teardown" and question["required"] and not question.get("default")
    assert template["extra_vars"]["fraudstream_teardown_require_confirm"] is True
    assert template.get("ask_variables_on_launch") is False, "a launch variable could lift the requirement"


def test_credential_types_inject_declared_variables():
    decl = declarations()
    types = {t["name"]: t for t in CONTROLLER["awx_credential_types"]}
    assert {"fraudstream kubeconfig", "fraudstream Grafana admin"} <= set(types)
    for cred_type in types.values():
        assert all(f.get("secret") for f in cred_type["inputs"]["fields"]), "every input is a secret"
        for var in cred_type["injectors"].get("extra_vars", {}):
            assert var in decl and all(o.get("no_log") for _, o in decl[var]), f"{var} is declared with no_log"
    assert types["fraudstream kubeconfig"]["injectors"]["env"] == {"KUBECONFIG": "{{ tower.filename.kubeconfig }}"}
    k8s = yaml.safe_load((ROOT / "inventories/k8s/group_vars/all.yml").read_text())
    assert "KUBECONFIG" in k8s["fraudstream_kubeconfig"], "inventories/k8s reads the file the credential injects"
    for cred in CONTROLLER["awx_credentials"]:
        assert cred["credential_type"] in types or cred["credential_type"] == "Amazon Web Services"


def test_workflow_is_deploy_verify_drill_with_failure_paths():
    (workflow,) = CONTROLLER["awx_workflows"]
    nodes = {n["identifier"]: n for n in workflow["nodes"]}
    templates = {t["name"] for t in CONTROLLER["awx_job_templates"]}
    edges = [(n["identifier"], c) for n in workflow["nodes"] for k in ("success_nodes", "failure_nodes", "always_nodes")
             for c in n.get(k, [])]
    assert all(n["job_template"] in templates for n in nodes.values())
    assert all(child in nodes for _, child in edges)
    roots = set(nodes) - {c for _, c in edges}
    assert roots == {"deploy"}
    path, node = [], "deploy"
    while node:
        path.append(nodes[node]["job_template"])
        node = (nodes[node].get("success_nodes") or [None])[0]
    assert path == ["fraudstream – deploy", "fraudstream – verify", "fraudstream – alert drill"]
    assert nodes["deploy"].get("failure_nodes") and nodes["drill"].get("failure_nodes"), "failure paths"
    # Every node is reachable from the root.
    seen, todo = set(), ["deploy"]
    while todo:
        node = todo.pop()
        seen.add(node)
        todo += [c for p, c in edges if p == node and c not in seen]
    assert seen == set(nodes)


def test_failures_notify_from_every_template_and_the_workflow():
    tasks = {t["name"]: t for t in yaml.safe_load((ROOT / "playbooks/awx.yml").read_text())[0]["tasks"]}
    for name in ("Job templates", "Workflows"):
        module = next(v for k, v in tasks[name].items() if k.startswith("awx.awx."))
        assert module["notification_templates_error"] == "{{ _awx_notifications }}"
    assert CONTROLLER["awx_notification_template"]["notification_type"] == "webhook"


def test_awx_playbook_syntax():
    run(["ansible-playbook", "playbooks/awx.yml", "--syntax-check"])


def test_awx_playbook_keeps_secrets_out_of_the_log():
    tasks = yaml.safe_load((ROOT / "playbooks/awx.yml").read_text())[0]["tasks"]
    credential_task = next(t for t in tasks if "awx.awx.credential" in t)
    assert credential_task.get("no_log") is True


# -- the execution environment ---------------------------------------------------------------------
def _name(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lines):
    return {_name(r): r.split("==", 1)[1].strip() for r in lines if "==" in r and not r.lstrip().startswith("#")}


EE_PYTHON = _pins(EE["dependencies"]["python"])
EE_COLLECTIONS = {c["name"]: c["version"] for c in EE["dependencies"]["galaxy"]["collections"]}


def test_builder_creates_a_build_context(tmp_path):
    run(["ansible-builder", "create", "-f", "awx/execution-environment.yml", "-c", str(tmp_path / "context")])
    context = tmp_path / "context"
    # A Containerfile where podman is on PATH, else (docker) a Dockerfile: the same content.
    containerfile = next(f for f in (context / "Containerfile", context / "Dockerfile") if f.exists()).read_text()
    assert f'ANSIBLE_INSTALL_REFS="{EE["dependencies"]["ansible_core"]["package_pip"]} ' in containerfile
    # What roles/eks_cluster's preflight asks for on the controller (aws-iam-authenticator or the AWS CLI).
    for binary in ("kubectl", "helm", "eksctl", "aws-iam-authenticator"):
        assert f" /usr/local/bin/{binary};" in containerfile and f"{binary} version" in containerfile, binary
    assert _pins((context / "_build/requirements.txt").read_text().splitlines()) == EE_PYTHON
    galaxy = yaml.safe_load((context / "_build/requirements.yml").read_text())
    assert {c["name"]: c["version"] for c in galaxy["collections"]} == EE_COLLECTIONS
    assert (context / "_build/fraudstream-platform/galaxy.yml").is_file(), "the project's collection is in the context"


def test_ee_pins_agree_with_the_project():
    project = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert EE["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={project['ansible-core']}"
    assert EE["dependencies"]["ansible_runner"]["package_pip"] == f"ansible-runner=={project['ansible-runner']}"
    for name, version in EE_PYTHON.items():
        if name in project:
            assert version == project[name], f"{name}: EE {version}, requirements.txt {project[name]}"
    galaxy = {c["name"]: c["version"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    for name, version in EE_COLLECTIONS.items():
        assert galaxy.get(name, version) == version, f"{name}: EE {version}, requirements.yml {galaxy.get(name)}"
    apps = tomllib.loads((ROOT / "apps/pyproject.toml").read_text())["project"]["dependencies"]
    assert _pins(apps).items() <= EE_PYTHON.items(), "the apps' pinned dependencies, at their pins"


def _installed_collections():
    """Collection name -> directory: the ansible bundle's and the project's own."""
    roots = [sysconfig.get_paths()["purelib"] + "/ansible_collections", str(ROOT / "collections/ansible_collections")]
    return {f"{ns.parent.name}.{ns.name}": str(ns) for root in roots for ns in Path(root).glob("*/*") if ns.is_dir()}


def used_collections():
    """Collections referenced by the playbooks and roles: module keys, module_defaults groups,
    lookups, filters and tests (FQCNs of installed collections)."""
    installed = _installed_collections()
    files = [ROOT / "site.yml", ROOT / "teardown.yml"] + sorted(ROOT.glob("playbooks/**/*.yml")) + \
        sorted(p for p in ROOT.glob("roles/*/**/*.yml") if "/files/" not in str(p))
    fqcn = re.compile(r"(?<![\w.\-/])([a-z]\w*)\.([a-z]\w*)\.[a-z_]\w*")
    used = {f"{ns}.{coll}" for path in files for ns, coll in fqcn.findall(path.read_text())}
    return used & set(installed), installed


def test_every_collection_the_playbooks_use_is_in_the_ee():
    used, _ = used_collections()
    assert {"kubernetes.core", "community.general", "fraudstream.platform", "awx.awx"} <= used
    missing = used - set(EE_COLLECTIONS) - {"fraudstream.platform"}
    assert not missing, f"collections used by the playbooks but not in the EE: {sorted(missing)}"
    steps = "\n".join(EE["additional_build_steps"]["append_final"])
    assert "ansible-galaxy collection install /tmp/fraudstream-platform" in steps


def test_every_python_import_is_in_the_ee():
    """Third-party imports of fraudstream.platform's plugins and playbooks/files, and the
    requirements.txt of every collection the playbooks use, are EE Python dependencies."""
    sources = sorted((ROOT / "collections/ansible_collections/fraudstream/platform/plugins").rglob("*.py")) + \
        sorted((ROOT / "playbooks/files").glob("*.py"))
    modules = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"ansible", "ansible_collections", "__future__"}
    assert "kafka" in third_party
    distributions = importlib.metadata.packages_distributions()
    needed = {_name(d) for m in third_party for d in distributions.get(m, [m])}
    used, installed = used_collections()
    for collection in used:
        requirements = os.path.join(installed[collection], "requirements.txt")
        if os.path.exists(requirements):
            needed |= {_name(line.strip()) for line in open(requirements) if line.strip() and not line.startswith("#")}
    assert not needed - set(EE_PYTHON), f"missing from the EE: {sorted(needed - set(EE_PYTHON))}"


# -- tools/awx_runner.py: AWX's launch semantics -------------------------------------------------
def test_survey_defaults_fill_unanswered_questions():
    answers = awx_runner.survey_answers(CONTROLLER["awx_surveys"]["deploy"], {"fraud_workloads_scorer_replicas": "3"})
    assert answers == {"fraudstream_target": "local", "fraudstream_cluster_name": "fraudstream",
                       "eks_cluster_region": "eu-west-2", "eks_cluster_node_count": 3,
                       "fraud_workloads_scorer_replicas": 3}


@pytest.mark.parametrize("answers,error", [
    ({"fraud_workloads_scorer_replicas": 7}, "between"),
    ({"fraud_workloads_scorer_replicas": "two"}, "expected to be integer"),
    ({"fraudstream_target": "eks"}, "expected to be one of"),
    ({"fraudstream_cluster_name": ""}, "value missing"),
])
def test_survey_refuses_what_awx_refuses(answers, error):
    with pytest.raises(awx_runner.SurveyError, match=error):
        awx_runner.survey_answers(CONTROLLER["awx_surveys"]["deploy"], answers)


def test_teardown_launch_without_confirmation_is_refused(tmp_path):
    with pytest.raises(awx_runner.SurveyError, match="'confirm_teardown' value missing"):
        awx_runner.prepare("fraudstream – teardown", tmp_path / "job")


def test_private_data_directory(tmp_path):
    """A verify job's directory: the project as checked out, the inventory as AWX imported it,
    the extra vars with AWX's job variables, AWX's environment."""
    job = awx_runner.prepare("fraudstream – verify", tmp_path / "job", job_id=7)
    pdd = job["dir"]
    assert (pdd / "project/site.yml").is_file() and (pdd / "project" / job["playbook"]).is_file()
    assert not (pdd / "project/.venv").exists() and not (pdd / "project/.git").exists()
    inventory = json.loads(subprocess.run([str(pdd / "inventory/hosts")], check=True, capture_output=True,
                                          text=True, env={**os.environ, "PATH": f"{ROOT}/.venv/bin:{os.environ['PATH']}"}).stdout)
    assert "localhost" in inventory["fraudstream"]["hosts"]
    assert inventory["all"]["vars"]["fraudstream_target"] == "local"
    assert "{{" in inventory["all"]["vars"]["fraudstream_home"], "imported untemplated, as AWX stores it"
    extravars = json.loads((pdd / "env/extravars").read_text())
    assert extravars["awx_job_id"] == 7 and extravars["awx_job_template_name"] == "fraudstream – verify"
    envvars = json.loads((pdd / "env/envvars").read_text())
    assert envvars["ANSIBLE_ROLES_PATH"].split(":")[:2] == [str(pdd / "requirements_roles"), "roles"]


def test_credentials_are_injected_as_awx_injects_them(tmp_path):
    (tmp_path / "env").mkdir()
    env, extras = awx_runner.credential_injection(
        CONTROLLER, {"fraudstream kubeconfig": {"kubeconfig": "apiVersion: v1\nkind: Config\n"},
                     "fraudstream Grafana admin": {"password": "s3cret-pw"}}, tmp_path)
    assert open(env["KUBECONFIG"]).read() == "apiVersion: v1\nkind: Config\n"
    assert oct(os.stat(env["KUBECONFIG"]).st_mode & 0o777) == "0o600"
    assert extras == {"monitoring_grafana_admin_password": "s3cret-pw"}


def test_teardown_refuses_a_wrong_confirmation_before_touching_anything(tmp_path):
    """The teardown template through ansible-runner with a wrong cluster name: the guard, the
    play's first task, fails and nothing else runs. FRAUDSTREAM_HOME points at a scratch
    directory, so even a broken guard could not reach the real platform."""
    home = tmp_path / "home"
    (home / "marker").mkdir(parents=True)
    job = awx_runner.prepare("fraudstream – teardown", tmp_path / "job", {"confirm_teardown": "yes"},
                             envvars={"FRAUDSTREAM_HOME": str(home), "FRAUDSTREAM_CACHE": str(tmp_path / "cache")})
    result = awx_runner.run(job)
    assert result["status"] == "failed", result["stdout"][-3000:]
    started = [e["event_data"]["task"] for e in result["events"] if e.get("event") == "playbook_on_task_start"]
    assert started == ["Refuse unless confirm_teardown names this cluster"], started
    assert "confirm_teardown=fraudstream" in result["stdout"]
    assert (home / "marker").is_dir()
