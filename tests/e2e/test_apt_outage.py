"""A Debian mirror outage fails no host that already has the packages: the roles refresh the package
index only when something is missing (CI once failed on a mirror outage while nothing was to install)."""
import os
from pathlib import Path

from conftest import recap, run


def test_installed_packages_need_no_mirror(tmp_path):
    run(["ansible-playbook", "tests/e2e/install_only.yml"], timeout=1800)  # installs what is missing
    # Every source now points at a port nothing listens on, with an empty, stale package index.
    (tmp_path / "sources.list").write_text("deb [trusted=yes] http://127.0.0.1:9/debian bookworm main\n")
    (tmp_path / "lists/partial").mkdir(parents=True)
    (tmp_path / "apt.conf").write_text(
        f'Dir::Etc::sourcelist "{tmp_path}/sources.list";\nDir::Etc::sourceparts "{tmp_path}/none";\n'
        f'Dir::State::Lists "{tmp_path}/lists";\n')
    env = {"APT_CONFIG": str(tmp_path / "apt.conf")}
    assert run(["apt-get", "update", "--error-on=any"], check=False, env_extra=env).returncode != 0, "the dead mirror answered"
    # The apt module judges the index's age by /var/lib/apt/lists whatever APT_CONFIG says: make it stale.
    lists = Path("/var/lib/apt/lists").stat()
    os.utime("/var/lib/apt/lists", (0, 0))
    try:
        proc = run(["ansible-playbook", "tests/e2e/install_only.yml"], env_extra=env, timeout=600)
    finally:
        os.utime("/var/lib/apt/lists", ns=(lists.st_atime_ns, lists.st_mtime_ns))
    assert recap(proc.stdout)["localhost"]["failed"] == 0
    assert "Failed to update" not in proc.stdout + proc.stderr
