"""The target-neutral skeleton on the local target: tags select sections, --check runs on a converged
host (on a fresh one: test_fresh_host.py), and settings derived from another follow it."""
import yaml

from conftest import ROOT, site


def ran(tasks):
    """Names of the tasks that ran (not skipped) on some host."""
    return {n for n, rs in tasks.items() if any(not r.get("skipped") for r in rs)}


def role_task_names(role, section):
    """Task names of one section file, as ansible-playbook prints them (`role : name`)."""
    tasks = yaml.safe_load((ROOT / f"roles/{role}/tasks/{section}.yml").read_text())
    return {f"{role} : {t['name']}" for t in tasks}


def test_derived_settings_follow_their_source(platform):
    """Move kafka_port and a scorer port in the inventory: the workloads' bootstrap address and the
    scrape targets follow, in what check mode would write."""
    _, tasks, _ = site("--check", "--diff", "--tags", "kafka_configure,fraud_workloads_run",
                       "-e", "kafka_port=19092", "-e", "fraud_workloads_scorer_port=18001")
    results = [r for rs in tasks.values() for r in rs]
    results += [item for r in results for item in r.get("results", [])]
    diffs = [d for r in results for d in (r.get("diff") or []) if isinstance(d, dict)]
    after = "\n".join(d["after"] for d in diffs if isinstance(d.get("after"), str))
    assert 'FRAUDSTREAM_BOOTSTRAP_SERVERS="127.0.0.1:19092"' in after, after[-3000:]
    assert "127.0.0.1:9092" not in after
    assert "127.0.0.1:18001" in after, "the scorer's scrape target follows fraud_workloads_scorer_port"


def test_a_tag_selects_its_section_and_nothing_else(platform):
    """--tags monitoring_configure runs monitoring's configure tasks (and preflights), no install,
    no run, no other role: before the dispatch include carried `always`, it ran nothing at all."""
    _, tasks, stats = site("--tags", "monitoring_configure")
    names = ran(tasks)
    assert role_task_names("monitoring", "configure") & names, f"monitoring_configure ran nothing: {sorted(names)}"
    for role, section in [("monitoring", "install"), ("monitoring", "run"), ("kafka", "configure"),
                          ("fraud_workloads", "run")]:
        assert not role_task_names(role, section) & names, f"{role}_{section} ran under --tags monitoring_configure"
    assert stats["localhost"]["changed"] == 0, "the platform is converged: a tagged re-run changes nothing"


def test_check_mode_on_a_converged_host(platform):
    """--check on the converged platform: nothing would change, nothing fails."""
    _, _, stats = site("--check")
    assert stats["localhost"]["changed"] == 0
