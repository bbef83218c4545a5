"""The world's baseline on the real embedded cluster: a responder's destructive change outside the fault is
found, `reset` restores it, and nothing of a Secret's value is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drills.adapters.clusters import facade as clusters
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.kube import world as baseline_files
from drills.adapters.store.journal import read_journal
from drills.errors import SafetyError
from drills.model.events import WorldDrifted

NS = "production"


def _baseline(handle: ClusterHandle) -> baseline_files.Baseline:
    loaded = baseline_files.load(clusters.baseline_file(handle.name))
    assert loaded is not None
    return loaded


def test_the_cluster_has_a_baseline_of_the_runbook_world_and_it_holds(world: ClusterHandle) -> None:
    baseline = _baseline(world)
    assert NS in baseline.namespaces
    assert "Deployment/production/db-proxy" in baseline.state
    assert "Secret/production/app-secrets" in baseline.state
    # no secret value is kept in the file, only a digest
    text = clusters.baseline_file(world.name).read_text()
    assert "dummy-db-password" not in text and "ZHVtbXk" not in text
    assert clusters.check_world(world, [NS]) == []


def test_deleted_dependency_scaled_app_hpa_and_cordon_are_found_and_reset(
    world: ClusterHandle, kubectl: Any
) -> None:
    kubectl("delete", "deployment", "db-proxy", "-n", NS, "--wait=true")
    kubectl("scale", "deployment/app", "-n", NS, "--replicas=5")
    kubectl("autoscale", "deployment/app", "-n", NS, "--cpu-percent=70", "--min=5", "--max=25")
    kubectl("cordon", "node-a1")
    diffs = {d.ref: d for d in clusters.check_world(world, [NS])}
    assert diffs["Deployment/production/db-proxy"].change == "missing"
    assert diffs["HorizontalPodAutoscaler/production/app"].change == "added"
    assert diffs["Deployment/production/app"].fields == ("spec.replicas",)
    assert diffs["Node/node-a1"].fields == ("unschedulable",)
    _, left = clusters.reset_world(world)
    assert left == [], [d.describe() for d in left]
    assert clusters.check_world(world, [NS]) == []
    assert kubectl.json("get", "deployment", "db-proxy", "-n", NS)["spec"]["replicas"] == 2
    assert kubectl("get", "hpa", "-n", NS, "-o", "name").stdout.strip() == ""
    assert not kubectl.json("get", "node", "node-a1")["spec"].get("unschedulable")


def test_what_the_fixtures_do_not_know_is_restored_from_the_baseline(
    world: ClusterHandle, kubectl: Any
) -> None:
    # An object added after the baseline is removed; a Service selector changed is put back from the
    # baseline's manifest (without the fixtures: as on a team's own cluster).
    kubectl("create", "configmap", "left-behind", "-n", NS, "--from-literal=a=b")
    kubectl("set", "selector", "service/db-proxy", "-n", NS, "app=nothing")
    diffs = {d.ref: d.change for d in clusters.check_world(world, [NS])}
    assert diffs == {"ConfigMap/production/left-behind": "added", "Service/production/db-proxy": "changed"}
    baseline = _baseline(world)
    with world.kube() as kube:
        done = baseline_files.restore(kube, baseline, baseline_files.compare(kube, baseline))
    assert len(done.restored) == 2 and done.left == []
    assert clusters.check_world(world, [NS]) == []
    selector = kubectl.json("get", "service", "db-proxy", "-n", NS)["spec"]["selector"]
    assert selector == {"app": "db-proxy"}


RECKLESS = """\
# The good bot's response, plus a destructive change outside the fault: it deletes the app's dependency.
name: reckless-bot
description: Mitigates by the runbook, and deletes db-proxy on the way.
relative_to: page
steps:
  - {step: ack, offset: 20s}
  - {step: role, role: ic, offset: 30s}
  - {step: declare, severity: "true", offset: 40s}
  - {step: kubectl, args: [delete, deployment, db-proxy, -n, production], offset: 50s}
  - {step: mitigate, offset: 1m}
  - {step: resolve, offset: 1m30s, wait: lasting}
"""


def test_a_drill_lists_what_the_responder_left_behind_and_the_next_starts_only_after_a_reset(
    world: ClusterHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_run_cluster import run

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    profile = tmp_path / "reckless.yaml"
    profile.write_text(RECKLESS)
    result = run(world, "bad-deploy-rollback", profile)
    drifted = [e for e in read_journal(result.journal_path).events if isinstance(e, WorldDrifted)]
    assert len(drifted) == 1
    assert [(d.ref, d.change) for d in drifted[0].differences] == [
        ("Deployment/production/db-proxy", "missing")
    ], [d.text for d in drifted[0].differences]
    # the next drill refuses the world as it is, and says how to reset it
    with pytest.raises(
        SafetyError, match="differs from its baseline: Deployment/production/db-proxy is missing"
    ) as e:
        run(world, "bad-deploy-rollback", "bot:good")
    assert "drill cluster reset" in (e.value.hint or "")
    _, left = clusters.reset_world(world)
    assert left == []
    clean = run(world, "bad-deploy-rollback", "bot:good")
    assert not [e for e in read_journal(clean.journal_path).events if isinstance(e, WorldDrifted)]


def test_drill_cluster_baseline_and_reset_from_the_command_line(world: ClusterHandle, kubectl: Any) -> None:
    import json

    from click.testing import CliRunner

    from drills.cli import cli

    kubectl("delete", "deployment", "db-proxy", "-n", NS, "--wait=true")
    runner = CliRunner()
    shown = runner.invoke(cli, ["cluster", "baseline", "--cluster", world.name, "-o", "json"])
    assert shown.exit_code == 4, shown.output
    data = json.loads(shown.output)
    assert [(d["ref"], d["change"]) for d in data["differences"]] == [
        ("Deployment/production/db-proxy", "missing")
    ]
    reset = runner.invoke(cli, ["cluster", "reset", "--cluster", world.name])
    assert reset.exit_code == 0, reset.output
    assert "restored: Deployment/production/db-proxy is missing" in reset.output
    clean = runner.invoke(cli, ["cluster", "baseline", "--cluster", world.name])
    assert clean.exit_code == 0 and "matches its baseline" in clean.output
