"""AWS for the tests: moto in server mode on 127.0.0.1, one server per session, reset per test.

Fixtures:
  moto_server -- session: starts moto's server on a free port of 127.0.0.1, yields its URL, and
                 stops it by its PID at the end.
  aws_env     -- function: resets moto (POST /moto-api/reset), points boto3 and subprocesses
                 (ansible, aws, eksctl) at it with dummy credentials and region eu-west-1, and
                 returns those variables as a dict (os.environ is monkeypatched with them too).

moto 5.2 has no EKS add-on API (ListAddons, DescribeAddon, CreateAddon, DeleteAddon); the server
this file starts adds a small in-memory one with the real API's shapes (see `serve`), so that
eksctl-made clusters, which always have add-ons, can be described. Run as a script, this file
is that server: `python tests/aws/conftest.py <host> <port>`.

tests/aws is a package (tests/aws/__init__.py): this file is imported as `aws.conftest`, so
tests/conftest.py keeps the module name `conftest` that other tests import from. This folder is
put on sys.path as well, so its tests can import their sibling helper modules by plain name.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REGION = "eu-west-1"
HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset(url):
    """Forget every resource in the moto server (all accounts and regions)."""
    request = urllib.request.Request(url + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200, answer.status


def wait_ready(url, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url + "/moto-api/data.json", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return False


def stop(proc):
    """Stop the server we started, by its PID: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


try:
    import pytest
except ImportError:  # run as the server script outside pytest's venv
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def moto_server(tmp_path_factory):
        """URL of a moto server on 127.0.0.1 (a free port), running for the whole session."""
        log = tmp_path_factory.mktemp("moto") / "server.log"
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            port = free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen([sys.executable, str(HERE), "127.0.0.1", str(port)],
                                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            if wait_ready(url, proc):
                break
            stop(proc)
        else:
            pytest.fail(f"moto server did not start; its log:\n{log.read_text()[-3000:]}")
        try:
            yield url
        finally:
            stop(proc)

    @pytest.fixture
    def aws_env(moto_server, monkeypatch, tmp_path):
        """Env vars that point boto3, ansible and the AWS CLIs at a freshly reset moto; also set in os.environ."""
        reset(moto_server)
        env = {
            "AWS_ENDPOINT_URL": moto_server,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # Nothing from the developer's ~/.aws, and no instance-metadata probes.
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL_") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN",
                                                                 "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env


# -- the server: moto plus an in-memory EKS add-on API ----------------------------------------------
def add_eks_addons():
    """Teach moto's EKS backend CreateAddon, DescribeAddon, ListAddons and DeleteAddon."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.eks import urls
    from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException
    from moto.eks.responses import EKSResponse
    from moto.moto_api._internal import mock_random

    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons$"] = urls.response.dispatch
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$"] = urls.response.dispatch

    def cluster_of(self):
        name = self._get_param("name") or self._get_param("clusterName")
        cluster = self.eks_backend.clusters.get(name)
        if cluster is None:
            raise ResourceNotFoundException(clusterName=name, nodegroupName=None, fargateProfileName=None,
                                            addonName=None, message=f"No cluster found for name: {name}.")
        if not hasattr(cluster, "addons"):
            cluster.addons = {}
        return cluster

    def addon_of(self, cluster):
        name = self._get_param("addonName")
        if name not in cluster.addons:
            raise ResourceNotFoundException(clusterName=cluster.name, nodegroupName=None, fargateProfileName=None,
                                            addonName=name, message=f"No addon: {name} found in cluster: {cluster.name}")
        return cluster.addons[name]

    def create_addon(self):
        cluster = cluster_of(self)
        name = self._get_param("addonName")
        if not name:
            raise InvalidParameterException(clusterName=cluster.name, message="addonName is required")
        if name in cluster.addons:
            raise ResourceInUseException(clusterName=cluster.name, addonName=name,
                                         message=f"Addon already exists with name: {name}")
        arn_base = cluster.arn.replace(":cluster/", ":addon/")
        associations = [
            "%s/%s" % (cluster.arn.replace(":cluster/", ":podidentityassociation/"),
                       "a-" + mock_random.get_random_string(17, lower_case=True))
            for _association in self._get_param("podIdentityAssociations") or []]
        now = utcnow()
        cluster.addons[name] = {
            "addonName": name, "clusterName": cluster.name, "status": "ACTIVE",
            "addonVersion": self._get_param("addonVersion") or "v1.0.0-eksbuild.1",
            "health": {"issues": []},
            "addonArn": f"{arn_base}/{name}/{mock_random.uuid4()}",
            "createdAt": now, "modifiedAt": now,
            "serviceAccountRoleArn": self._get_param("serviceAccountRoleArn"),
            "tags": self._get_param("tags") or {},
            "configurationValues": self._get_param("configurationValues"),
            "podIdentityAssociations": associations,
        }
        return ActionResult({"addon": cluster.addons[name]})

    def describe_addon(self):
        return ActionResult({"addon": addon_of(self, cluster_of(self))})

    def delete_addon(self):
        cluster = cluster_of(self)
        addon = addon_of(self, cluster)
        del cluster.addons[addon["addonName"]]
        return ActionResult({"addon": dict(addon, status="DELETING")})

    def list_addons(self):
        return ActionResult({"addons": sorted(cluster_of(self).addons)})

    for function in (create_addon, describe_addon, delete_addon, list_addons):
        setattr(EKSResponse, function.__name__, function)


def serve(host, port):
    from moto.server import main

    add_eks_addons()
    main(["-H", host, "-p", str(port)])


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
