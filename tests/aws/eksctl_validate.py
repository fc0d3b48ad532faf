"""Validate an eksctl ClusterConfig with eksctl itself, offline.

eksctl is built from the Go module proxy by tests/aws/eksctl/build.sh (a versioned cache
outside the clone). Validation runs two checks, eksctl's own first:

1. `eksctl create cluster -f <config> --dry-run`: eksctl loads the file strictly (an unknown
   field is an error), sets its defaults, runs its ClusterConfig and node group validation and
   prints the normalized config, creating nothing. The dry run still makes read-only AWS calls
   (STS GetCallerIdentity, EKS DescribeClusterVersions, EC2 DescribeAvailabilityZones and
   DescribeInstanceTypeOfferings), so they go to a local endpoint on a free 127.0.0.1 port:
   moto's server app, plus one answer that moto (5.2) does not have, EKS DescribeClusterVersions,
   served from EKS_VERSIONS below. No AWS account or network is needed.
2. `eksctl utils schema`: the JSON schema of eksctl's ClusterConfig, against which the input
   YAML is checked with `jsonschema`.

Limits: nothing is checked against a real AWS account: not whether the Kubernetes version,
add-on versions, instance types or AMIs exist in the region (the version is checked only against
EKS_VERSIONS), not IAM permissions or quotas. Add-on pod identity associations are resolved by
the EKS API at creation, so the dry run only checks their shape.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "eksctl" / "build.sh"
# Cold: 18 min of CPU (download 1.5 min); 52 min wall when measured on 2 busy cores (load 12-18,
# the control plane building too). Warm: a no-op of a few ms.
BUILD_TIMEOUT = 5400
RUN_TIMEOUT = 120

# What the local endpoint answers to EKS DescribeClusterVersions: the EKS versions of
# eksctl v0.215.0's release time (October 2025). eksctl rejects a metadata.version outside this
# list ("invalid version, supported values: ..."), as it would against AWS.
EKS_VERSIONS = {
    "1.28": "EXTENDED_SUPPORT",
    "1.29": "EXTENDED_SUPPORT",
    "1.30": "EXTENDED_SUPPORT",
    "1.31": "STANDARD_SUPPORT",
    "1.32": "STANDARD_SUPPORT",
    "1.33": "STANDARD_SUPPORT",
    "1.34": "STANDARD_SUPPORT",
}
EKS_DEFAULT_VERSION = "1.32"  # eksctl v0.215.0's api.DefaultVersion


class EksctlError(RuntimeError):
    """eksctl rejected a config (or could not run); `stderr` holds eksctl's own message."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(f"{message}\n{stderr}".rstrip())
        self.stderr = stderr


@cache
def eksctl_bin() -> Path:
    """Build (or reuse) eksctl with tests/aws/eksctl/build.sh; returns the binary's path."""
    proc = subprocess.run([str(BUILD_SH)], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{BUILD_SH} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    binary = Path(proc.stdout.split()[-1]) / "eksctl"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{BUILD_SH} printed {binary.parent}, which holds no eksctl")
    return binary


def version() -> str:
    """`eksctl version` of the built binary."""
    return _run([str(eksctl_bin()), "version"], _isolated_env()).stdout.strip()


@cache
def schema() -> dict:
    """eksctl's JSON schema of ClusterConfig (`eksctl utils schema`)."""
    return json.loads(_run([str(eksctl_bin()), "utils", "schema"], _isolated_env()).stdout)


def schema_errors(config: dict) -> list[str]:
    """Where a loaded ClusterConfig breaks eksctl's JSON schema; empty when it does not."""
    validator = jsonschema.Draft7Validator(schema())
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(config))


def validate(config_path: str | os.PathLike) -> dict:
    """Validate a ClusterConfig file with eksctl (dry run, then the schema).

    Returns the normalized config eksctl prints, as a dict. Raises EksctlError carrying
    eksctl's stderr when eksctl rejects the file, or the schema errors when the schema does.
    """
    path = Path(config_path).resolve()
    config = yaml.safe_load(path.read_text())
    with aws_endpoint() as endpoint:
        env = _isolated_env(endpoint)
        proc = _run([str(eksctl_bin()), "create", "cluster", "-f", str(path), "--dry-run"],
                    env, check=False)
    if proc.returncode != 0:
        raise EksctlError(f"eksctl rejected {path} (exit {proc.returncode}):", proc.stderr.strip())
    normalized = yaml.safe_load(proc.stdout)
    if not isinstance(normalized, dict) or normalized.get("kind") != "ClusterConfig":
        raise EksctlError(f"eksctl's dry run of {path} printed no ClusterConfig:", proc.stdout[-2000:])
    errors = schema_errors(config)
    if errors:
        raise EksctlError(f"{path} breaks eksctl's JSON schema:", "\n".join(errors))
    return normalized


def _isolated_env(endpoint: str | None = None) -> dict:
    """An environment with fake credentials and no AWS config of the user's."""
    scratch = Path(tempfile.gettempdir()) / "fraudstream-eksctl-home"
    scratch.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EKSCTL_"))}
    env.update({
        "HOME": str(scratch),  # eksctl reads ~/.aws and ~/.kube; give it an empty home
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(scratch / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "KUBECONFIG": str(scratch / "kubeconfig"),
    })
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def _run(cmd: list[str], env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if check and proc.returncode != 0:
        raise EksctlError(f"{' '.join(cmd)} exited {proc.returncode}:", proc.stderr.strip())
    return proc


def _cluster_versions_app(environ, start_response):
    """EKS DescribeClusterVersions (GET /cluster-versions), which moto does not serve."""
    body = json.dumps({"clusterVersions": [
        {"clusterVersion": v, "clusterType": "eks", "status": status, "versionStatus": status,
         "defaultVersion": v == EKS_DEFAULT_VERSION}
        for v, status in EKS_VERSIONS.items()]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def aws_endpoint():
    """A local AWS endpoint on a free 127.0.0.1 port: moto, plus EKS DescribeClusterVersions."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/cluster-versions" and environ.get("REQUEST_METHOD") == "GET":
            return _cluster_versions_app(environ, start_response)
        return moto_app(environ, start_response)

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args, **kwargs):  # no access log on the test's stderr
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
