"""The workflow "fraudstream – deploy, verify, drill" run the way AWX runs it: each job template's
private data directory (project copy, imported inventory, survey defaults as extra vars) through
`ansible-runner run`, on the local platform. The platform is converged already (the session's
`make up`), so the deploy job must change nothing."""
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import awx_runner  # noqa: E402

pytestmark = [pytest.mark.awx, pytest.mark.e2e]


def test_deploy_verify_drill_through_ansible_runner(platform, tmp_path):
    results = awx_runner.run_workflow("fraudstream – deploy, verify, drill", tmp_path)
    summary = [(ident, r["status"]) for ident, r in results]
    failed = next((r for _, r in results if r["status"] != "successful"), None)
    assert summary == [("deploy", "successful"), ("verify", "successful"), ("drill", "successful")], (
        f"{summary}\n{failed['stdout'][-6000:] if failed else ''}")
    deploy = results[0][1]["stats"]
    assert sum(deploy.get("changed", {}).values()) == 0, f"deploy on a converged platform changed: {deploy}"
    drill = results[2][1]["stdout"]
    assert "FraudConsumerDown firing" in drill and "lag drained" in drill, drill[-3000:]
