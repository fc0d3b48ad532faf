#!/usr/bin/env python3
"""Run fraudstream's AWX job templates (awx/controller.yml) the way AWX runs them, without AWX.

AWX validates a launch's survey answers, fills in survey defaults, merges them over the job
template's extra vars, imports the inventory from the project with `ansible-inventory --list
--export` and hands the job to ansible-runner as a private data directory:

    project/         the project checkout (here: the repo's tracked and untracked, non-ignored files)
    inventory/hosts  a script that prints the imported inventory as JSON
    env/extravars    template extra vars < survey answers and defaults, plus AWX's awx_* variables
    env/envvars      AWX's environment (roles and collections paths, JOB_ID, ...) and credentials'
    env/settings     runner settings

then runs `ansible-runner run <dir> -p <playbook>`. In AWX that happens inside the execution
environment; here it runs on this host with process isolation off, with the project venv's
ansible. Usage:

    tools/awx_runner.py 'fraudstream – deploy' [-a var=value ...] [--dir DIR]
    tools/awx_runner.py --workflow 'fraudstream – deploy, verify, drill' [-a var=value ...]
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2.sandbox
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTROLLER = ROOT / "awx/controller.yml"
VENV_BIN = ROOT / ".venv/bin"
CONTAINER_ROOT = "/runner"  # where AWX mounts the private data directory inside the EE


class SurveyError(ValueError):
    """AWX refuses the launch (HTTP 400), as for these answers."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_controller(path: Path = CONTROLLER) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def job_template(controller: dict, name: str) -> dict:
    for template in controller["awx_job_templates"]:
        if template["name"] == name:
            return template
    raise KeyError(f"no job template {name!r} in awx/controller.yml")


def inventory(controller: dict, name: str) -> dict:
    return next(inv for inv in controller["awx_inventories"] if inv["name"] == name)


def survey_answers(survey: dict | None, answers: dict) -> dict:
    """AWX's survey handling at launch: validate each answer, fill in defaults, refuse a required
    question left without an answer (SurveyJobTemplateMixin._survey_element_validation)."""
    if not survey:
        return dict(answers)
    out = dict(answers)
    errors = []
    for question in survey["spec"]:
        var, kind = question["variable"], question["type"]
        if var not in out and question.get("default") not in (None, ""):
            out[var] = question["default"]
        if var not in out or out[var] in (None, ""):
            if question.get("required"):
                errors.append(f"'{var}' value missing")
            out.pop(var, None)
            continue
        value = out[var]
        if kind in ("text", "textarea", "password"):
            if not isinstance(value, str):
                errors.append(f"Value {value!r} for '{var}' expected to be a string.")
            elif not question.get("min", 0) <= len(value) <= question.get("max", 1024):
                errors.append(f"'{var}' value {value!r} is not {question.get('min')} to {question.get('max')} characters")
        elif kind in ("integer", "float"):
            if isinstance(value, str):
                try:
                    value = out[var] = int(value) if kind == "integer" else float(value)
                except ValueError:
                    errors.append(f"Value {value!r} for '{var}' expected to be {kind}.")
                    continue
            wanted = int if kind == "integer" else (int, float)
            if isinstance(value, bool) or not isinstance(value, wanted):
                errors.append(f"Value {value!r} for '{var}' expected to be {kind}.")
            elif ("min" in question and value < question["min"]) or ("max" in question and value > question["max"]):
                errors.append(f"'{var}' value {value} is not between {question.get('min')} and {question.get('max')}")
        elif kind == "multiplechoice":
            if value not in _choices(question):
                errors.append(f"Value {value!r} for '{var}' expected to be one of {_choices(question)}.")
        elif kind == "multiselect":
            if not isinstance(value, list) or not set(value) <= set(_choices(question)):
                errors.append(f"Value {value!r} for '{var}' expected to be a subset of {_choices(question)}.")
    if errors:
        raise SurveyError("; ".join(errors))
    return out


def _choices(question: dict) -> list:
    choices = question.get("choices", [])
    return choices.split("\n") if isinstance(choices, str) else list(choices)


def extra_vars(controller: dict, template: dict, answers: dict | None = None, job_id: int = 1,
               workflow_vars: dict | None = None) -> dict:
    """The job's extra vars: template < workflow (its survey) < launch answers, validated against
    the template's survey, plus the awx_*/tower_* variables AWX adds to every job."""
    survey = controller["awx_surveys"].get(template.get("survey")) if template.get("survey") else None
    launch = {**(workflow_vars or {}), **(answers or {})}
    if launch and not survey and not template.get("ask_variables_on_launch", True) and not workflow_vars:
        raise SurveyError(f"{template['name']} does not prompt for variables: {sorted(launch)}")
    merged = {**template.get("extra_vars", {}), **survey_answers(survey, launch)}
    for prefix in ("awx", "tower"):
        merged.update({f"{prefix}_job_id": job_id, f"{prefix}_job_template_name": template["name"],
                       f"{prefix}_job_launch_type": "workflow" if workflow_vars is not None else "manual",
                       f"{prefix}_project_revision": _git("rev-parse", "HEAD")})
    return merged


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip()


def copy_project(dest: Path) -> None:
    """The project as a checkout would hold it: tracked and untracked files, not the ignored ones
    (no .venv, no build output), modes kept."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def inventory_script(project: Path, source_path: str, env: dict) -> str:
    """AWX's inventory import (ansible-inventory --list --export on the project's source), written
    as the executable script AWX gives ansible-runner."""
    proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", source_path, "--list", "--export"],
                          cwd=project, env=env, check=True, capture_output=True, text=True)
    data = json.loads(proc.stdout)
    return "#! /usr/bin/env python3\nimport json\n\nprint(json.dumps(json.loads(%r)))\n" % json.dumps(data)


def credential_injection(controller: dict, credentials: dict, pdd: Path) -> tuple[dict, dict]:
    """Render credential types' injectors (file, env, extra_vars) as AWX does, for
    credentials = {credential type name: {input id: value}}. Returns (env, extra_vars)."""
    types = {t["name"]: t for t in controller["awx_credential_types"]}
    env, extras = {}, {}
    jinja = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    for type_name, inputs in credentials.items():
        injectors = types[type_name]["injectors"]
        filenames = {}
        for key, template in injectors.get("file", {}).items():
            path = pdd / "env" / f"cred_{type_name.replace(' ', '_')}_{key.rpartition('.')[2]}"
            path.write_text(jinja.from_string(template).render(**inputs))
            path.chmod(0o600)
            filenames[key.partition(".")[2] or "template"] = str(path)
        tower = {"filename": filenames if len(filenames) != 1 or "template" not in filenames else filenames["template"]}
        context = {**inputs, "tower": tower, "awx": tower}
        env.update({k: jinja.from_string(v).render(**context) for k, v in injectors.get("env", {}).items()})
        extras.update({k: jinja.from_string(v).render(**context) for k, v in injectors.get("extra_vars", {}).items()})
    return env, extras


def awx_env(project: Path, pdd: Path, job_id: int) -> dict:
    """The environment AWX's RunJob.build_env sets, with the private data directory in place of
    /runner. ANSIBLE_COLLECTIONS_PATHS is what AWX sets (ansible-core 2.19 no longer reads the
    plural name, so the project's ansible.cfg collections_path decides)."""
    cfg = configparser.ConfigParser()
    cfg.read(project / "ansible.cfg")
    defaults = cfg["defaults"] if cfg.has_section("defaults") else {}
    env = {"ANSIBLE_FORCE_COLOR": "False", "ANSIBLE_HOST_KEY_CHECKING": "False",
           "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
           "ANSIBLE_RETRY_FILES_ENABLED": "False", "PYTHONUNBUFFERED": "1", "JOB_ID": str(job_id),
           "PROJECT_REVISION": _git("rev-parse", "HEAD"), "AWX_PRIVATE_DATA_DIR": str(pdd)}
    for env_key, setting, folder, default in (
            ("ANSIBLE_COLLECTIONS_PATHS", "collections_paths", "requirements_collections",
             "~/.ansible/collections:/usr/share/ansible/collections"),
            ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles",
             "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles")):
        paths = default.split(":")
        if setting in defaults:
            paths = [defaults[setting]] + paths
        env[env_key] = ":".join([str(pdd / folder)] + paths)
    return env


def prepare(template_name: str, pdd: Path, answers: dict | None = None, credentials: dict | None = None,
            envvars: dict | None = None, job_id: int = 1, workflow_vars: dict | None = None,
            controller: dict | None = None) -> dict:
    """Write the private data directory of one job; returns the job (playbook, dirs)."""
    controller = controller or load_controller()
    template = job_template(controller, template_name)
    variables = extra_vars(controller, template, answers, job_id, workflow_vars)
    project = pdd / "project"
    for sub in ("project", "inventory", "env", "requirements_collections", "requirements_roles"):
        (pdd / sub).mkdir(parents=True, exist_ok=True)
    copy_project(project)
    run_env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **(envvars or {})}
    script = pdd / "inventory/hosts"
    script.write_text(inventory_script(project, inventory(controller, template["inventory"])["source_path"], run_env))
    script.chmod(0o755)
    cred_env, cred_vars = credential_injection(controller, credentials or {}, pdd)
    variables.update(cred_vars)
    (pdd / "env/extravars").write_text(json.dumps(variables, indent=2))
    (pdd / "env/envvars").write_text(json.dumps({**awx_env(project, pdd, job_id), **cred_env, **(envvars or {})}, indent=2))
    (pdd / "env/settings").write_text(json.dumps({"job_timeout": template.get("timeout", 0), "pexpect_timeout": 5,
                                                  "suppress_ansible_output": False}))
    return {"template": template_name, "playbook": template["playbook"], "dir": pdd, "extra_vars": variables}


def run(job: dict, ident: str = "1", timeout: int = 3600) -> dict:
    """`ansible-runner run <dir> -p <playbook>`; returns status, rc, stats and the stdout."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(VENV_BIN / "ansible-runner"), "run", str(job["dir"]), "-p", job["playbook"],
                           "--ident", ident], env=env, capture_output=True, text=True, timeout=timeout)
    artifacts = Path(job["dir"]) / "artifacts" / ident
    status = (artifacts / "status").read_text().strip() if (artifacts / "status").exists() else "error"
    events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"),
                                                          key=lambda p: int(p.name.split("-", 1)[0]))]
    stats = next((e["event_data"] for e in reversed(events) if e.get("event") == "playbook_on_stats"), {})
    return {"status": status, "rc": proc.returncode, "stats": stats, "events": events,
            "stdout": proc.stdout + proc.stderr}


def run_workflow(name: str, base: Path, answers: dict | None = None, controller: dict | None = None,
                 on_job=None) -> list[tuple[str, dict]]:
    """Walk a workflow as AWX does: roots first, then each node's success, failure or always
    edges. The workflow's survey answers reach every node. Returns [(identifier, result)]."""
    controller = controller or load_controller()
    workflow = next(w for w in controller["awx_workflows"] if w["name"] == name)
    survey = controller["awx_surveys"].get(workflow.get("survey")) if workflow.get("survey") else None
    wf_vars = survey_answers(survey, answers or {})
    nodes = {n["identifier"]: n for n in workflow["nodes"]}
    children = {c for n in workflow["nodes"] for k in ("success_nodes", "failure_nodes", "always_nodes")
                for c in n.get(k, [])}
    queue = [n for n in nodes if n not in children]
    done = []
    while queue:
        ident = queue.pop(0)
        node = nodes[ident]
        job_id = len(done) + 1
        job = prepare(node["job_template"], base / f"{job_id}-{ident.replace(' ', '-')}", job_id=job_id,
                      workflow_vars=wf_vars, controller=controller)
        result = run(job)
        done.append((ident, result))
        if on_job:
            on_job(ident, result)
        edge = "success_nodes" if result["status"] == "successful" else "failure_nodes"
        queue += node.get(edge, []) + node.get("always_nodes", [])
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", help="job template (or, with --workflow, workflow) name")
    parser.add_argument("--workflow", action="store_true")
    parser.add_argument("-a", "--answer", action="append", default=[], metavar="VAR=VALUE",
                        help="survey answer or launch variable (YAML value)")
    parser.add_argument("--dir", type=Path, help="private data directory (default: a new temporary one)")
    args = parser.parse_args(argv)
    answers = {k: yaml.safe_load(v) for k, _, v in (a.partition("=") for a in args.answer)}
    base = args.dir or Path(tempfile.mkdtemp(prefix="awx-job-"))
    try:
        if args.workflow:
            results = run_workflow(args.template, base, answers,
                                   on_job=lambda i, r: print(f"{i}: {r['status']}", flush=True))
            return 0 if all(r["status"] == "successful" for _, r in results) else 1
        result = run(prepare(args.template, base, answers))
    except SurveyError as exc:
        print(f"launch refused: {exc}", file=sys.stderr)
        return 2
    print(result["stdout"])
    print(f"{args.template}: {result['status']} (private data directory {base})")
    return 0 if result["status"] == "successful" else 1


if __name__ == "__main__":
    sys.exit(main())
