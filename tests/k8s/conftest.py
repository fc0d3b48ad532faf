"""A real Kubernetes API server for the tests in this folder.

By default the session builds the control plane from the Go module proxy (once; later sessions
reuse the binaries in ~/.cache/fraudstream) and starts it on 127.0.0.1 (controlplane/cluster.sh).
With FRAUDSTREAM_KUBECONFIG set, the tests run against that cluster instead (kind, minikube,
EKS) and nothing is built or started.
"""
import os
import uuid

import pytest
from k8s_harness import Cluster, external_cluster, local_cluster


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory) -> Cluster:
    external = os.environ.get("FRAUDSTREAM_KUBECONFIG")
    if external:
        yield external_cluster(external)
        return
    with local_cluster(tmp_path_factory.mktemp("k8s") / "run") as cluster:
        yield cluster


@pytest.fixture
def namespace(k8s_cluster):
    """A namespace of its own for one test, deleted afterwards."""
    name = f"fraudstream-test-{uuid.uuid4().hex[:8]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
