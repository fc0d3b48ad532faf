"""The Grafana dashboards load into Grafana's own dashboard model and lose no query on the way.

grafana-foundation-sdk is generated from Grafana's schemas: Dashboard.from_json decodes panels
and, through the plugin registry (register_default_plugins), each target into its datasource's
query model (prometheus.Dataquery for ours). The dashboard goes through that model and back to
JSON, and every panel's datasource and every target's expr, refId and datasource must come out as
they went in, non-empty and Prometheus. Broken copies (a query dropped, a panel without its
datasource, ...) must be caught, so that the check is known to be able to fail.
"""
import copy
import json
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "roles" / "monitoring" / "files" / "dashboards").glob("*.json"))
DATASOURCE_TYPE = "prometheus"

register_default_plugins()


def _panels(items: list | None) -> list[dict]:
    """Panels in order, those inside rows included; rows themselves are layout, not queries."""
    out = []
    for item in items or []:
        if not isinstance(item, dict):
            out.append(item)
        elif item.get("type") == "row":
            out.extend(_panels(item.get("panels")))
        else:
            out.append(item)
    return out


def _model_panels(items: list | None) -> list:
    out = []
    for item in items or []:
        out.extend(_model_panels(item.panels) if getattr(item, "type_val", None) == "row" else [item])
    return out


def _datasource_variables(dashboard: dict) -> set[str]:
    """Names of the dashboard's datasource variables that pick a Prometheus datasource."""
    return {v.get("name") for v in (dashboard.get("templating") or {}).get("list") or []
            if v.get("type") == "datasource" and v.get("query") == DATASOURCE_TYPE}


def _is_prometheus(ref, variables: set[str]) -> bool:
    return isinstance(ref, dict) and ref.get("type") == DATASOURCE_TYPE and (
        not str(ref.get("uid", "")).startswith("$") or ref["uid"].strip("${}") in variables)


def roundtrip(dashboard: dict):
    """(model, JSON of the model) of a dashboard's JSON."""
    model = Dashboard.from_json(dashboard)
    return model, json.loads(json.dumps(model, cls=JSONEncoder))


def problems(dashboard: dict) -> list[str]:
    """Everything wrong with one dashboard; empty when it survives the round trip whole."""
    try:
        model, back = roundtrip(dashboard)
    except Exception as err:  # the SDK's decoders raise whatever the JSON trips them on
        return [f"does not load into the SDK's Dashboard model: {type(err).__name__}: {err}"]
    found = []
    for key in ("uid", "title", "schemaVersion"):
        if not dashboard.get(key) or back.get(key) != dashboard.get(key):
            found.append(f"{key}: {dashboard.get(key)!r} -> {back.get(key)!r}")
    variables = _datasource_variables(dashboard)
    if _datasource_variables(back) != variables:
        found.append(f"datasource variables {sorted(variables)} -> {sorted(_datasource_variables(back))}")
    before, after, models = _panels(dashboard.get("panels")), _panels(back.get("panels")), _model_panels(model.panels)
    if not before:
        found.append("no panels")
    if len(after) != len(before):
        return [*found, f"{len(before)} panels -> {len(after)}"]
    for panel, out, panel_model in zip(before, after, models, strict=True):
        name = f"panel {panel.get('title')!r}" if isinstance(panel, dict) else f"panel {panel!r}"
        if out.get("title") != panel.get("title") or out.get("type") != panel.get("type"):
            found.append(f"{name}: title/type {panel.get('title')!r}/{panel.get('type')!r} "
                         f"-> {out.get('title')!r}/{out.get('type')!r}")
        if out.get("datasource") != panel.get("datasource"):
            found.append(f"{name}: datasource {panel.get('datasource')!r} -> {out.get('datasource')!r}")
        if not _is_prometheus(panel.get("datasource"), variables):
            found.append(f"{name}: datasource {panel.get('datasource')!r} is not Prometheus "
                         "(nor a Prometheus datasource variable)")
        targets, targets_back = panel.get("targets") or [], out.get("targets") or []
        if not targets:
            found.append(f"{name}: no query")
        if len(targets_back) != len(targets):
            found.append(f"{name}: {len(targets)} queries -> {len(targets_back)}")
            continue
        ref_ids = [t.get("refId") for t in targets if isinstance(t, dict)]
        if len(set(ref_ids)) != len(ref_ids):
            found.append(f"{name}: refIds not unique: {ref_ids}")
        for target, target_back, query in zip(targets, targets_back, panel_model.targets or [], strict=True):
            where = f"{name} query {target.get('refId')!r}"
            if not isinstance(query, prometheus.Dataquery):
                kind = "unknown" if isinstance(query, cogruntime.UnknownDataquery) else type(query).__module__
                found.append(f"{where}: decoded as {kind} query, not a Prometheus one")
            for key in ("expr", "refId"):
                if not target.get(key):
                    found.append(f"{where}: no {key}")
                if target_back.get(key) != target.get(key):
                    found.append(f"{where}: {key} {target.get(key)!r} -> {target_back.get(key)!r}")
            if target_back.get("datasource") != target.get("datasource"):
                found.append(f"{where}: datasource {target.get('datasource')!r} -> {target_back.get('datasource')!r}")
            if "datasource" in target and not _is_prometheus(target["datasource"], variables):
                found.append(f"{where}: datasource {target['datasource']!r} is not Prometheus")
    return found


def test_dashboards_exist():
    assert len(DASHBOARDS) >= 3, f"expected the kafka, model and pipeline dashboards, found {DASHBOARDS}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_round_trip(path):
    dashboard = json.loads(path.read_text())
    found = problems(dashboard)
    assert not found, f"{path.name}:\n" + "\n".join(found)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uids_unique(path):
    uids = {p.name: json.loads(p.read_text()).get("uid") for p in DASHBOARDS}
    assert list(uids.values()).count(uids[path.name]) == 1, f"uid {uids[path.name]!r} is shared: {uids}"


# -- the check can fail: broken copies ---------------------------------------------------------------
def _first_query_panel(dashboard):
    return next(p for p in _panels(dashboard["panels"]) if p.get("targets"))


def _drop_expr(d):
    _first_query_panel(d)["targets"][0].pop("expr")


def _drop_targets(d):
    _first_query_panel(d).pop("targets")


def _misspell_expr(d):
    target = _first_query_panel(d)["targets"][0]
    target["exp"] = target.pop("expr")


def _drop_panel_datasource(d):
    _first_query_panel(d).pop("datasource")


def _loki_datasource(d):
    _first_query_panel(d)["datasource"] = {"type": "loki", "uid": "${datasource}"}


def _legacy_string_datasource(d):
    _first_query_panel(d)["targets"][0]["datasource"] = "Prometheus"


def _duplicate_ref_id(d):
    panel = _first_query_panel(d)
    panel["targets"].append(copy.deepcopy(panel["targets"][0]))


def _unknown_variable(d):
    _first_query_panel(d)["datasource"]["uid"] = "${nosuchvariable}"


BREAKAGES = [_drop_expr, _drop_targets, _misspell_expr, _drop_panel_datasource, _loki_datasource,
             _legacy_string_datasource, _duplicate_ref_id, _unknown_variable]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__.strip("_"))
def test_broken_copy_is_caught(breakage):
    dashboard = json.loads(DASHBOARDS[0].read_text())
    assert not problems(dashboard), "the original must pass for this test to mean anything"
    broken = copy.deepcopy(dashboard)
    breakage(broken)
    found = problems(broken)
    assert found, f"{breakage.__name__} on {DASHBOARDS[0].name} went unnoticed"
    title = _first_query_panel(dashboard).get("title")
    assert any(repr(title) in line or "SDK" in line for line in found), found


def test_rendered_dashboards_match_files():
    """What the monitoring role deploys (ConfigMaps for Grafana's sidecar) is these files, and
    passes the same check."""
    from test_manifests import SIZES, objects_of, rendered

    if "error" in rendered()[SIZES[0]]:
        pytest.fail("rendering failed (see test_manifests.py::test_render)")
    shipped = {}
    for _, obj in objects_of(SIZES[0]):
        if obj.get("kind") == "ConfigMap" and "grafana_dashboard" in ((obj.get("metadata") or {}).get("labels") or {}):
            for key, text in (obj.get("data") or {}).items():
                shipped[key] = json.loads(text)
    if not shipped:
        pytest.skip("the monitoring role renders no ConfigMap labelled grafana_dashboard (dashboards reach Grafana "
                    "another way, e.g. chart values): only the files are checked")
    files = {json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in DASHBOARDS}
    by_uid = {d.get("uid"): d for d in shipped.values()}
    assert set(by_uid) == set(files), f"dashboards shipped {sorted(by_uid)} vs files {sorted(files)}"
    for uid, dashboard in by_uid.items():
        assert not problems(dashboard), f"shipped dashboard {uid}: {problems(dashboard)}"
        assert _panels(dashboard["panels"]) == _panels(files[uid]["panels"]), f"shipped dashboard {uid} differs from its file"
