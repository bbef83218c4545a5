"""The Chaos Toolkit corpus (tests/ctk/) on the embedded cluster, each experiment beside `chaos run` itself.

Kept small for the CI budget: the experiments are injected directly (no drill around them) except the slow
drain, which is a whole drill with the bot, since its point is the page and the clocks. Every runnable
experiment is also run with the `chaos` CLI against the same cluster, and the activities, their statuses and
the rollbacks it played are compared with what drills recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from faults_support import baseline, variant, wait_for_baseline
from rich.console import Console

from drills.adapters import faults
from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.faults.ledger import Ledger
from drills.adapters.kube import resources
from drills.adapters.kube.audit import AuditRecord
from drills.adapters.kube.client import Kube
from drills.adapters.store.journal import read_journal
from drills.errors import SafetyError, SteadyStateNotMet
from drills.model.events import (
    Acknowledged,
    AlertFired,
    ChaosToolkitEvent,
    DrillStarted,
    FaultInjected,
    FaultReverted,
    Outcome,
    PageSent,
)
from drills.model.policy import Policy, SlaOverrides, SlaTargets
from drills.runner.run import ClusterTarget, DrillOptions, DrillRun, ReportingOptions, ResponderOptions
from drills.timing import SYSTEM_CLOCK

pytestmark = pytest.mark.cluster

CORPUS = Path(__file__).parent / "ctk"
CHAOS = Path(sys.executable).parent / "chaos"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("DRILLS_CTK_TOKEN", "inline-and-env-t0ken")
    return tmp_path / "state"


class Sink:
    """A journal stand-in with a place on disk (where the run journal and chaoslib's log go)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "journal.jsonl"
        self.events: list[Any] = []

    def append(self, event: Any) -> Any:
        self.events.append(event)
        return event

    def ctk(self, phase: str | None = None) -> list[ChaosToolkitEvent]:
        return [e for e in self.events if isinstance(e, ChaosToolkitEvent) and phase in (None, e.phase)]


def _wrap(name: str, **fault: Any) -> Any:
    return variant(
        "chaostoolkit-terminate-pod", {"kind": "chaostoolkit", "experiment": str(CORPUS / name), **fault}
    )


def _chaos_run(
    world: ClusterHandle, experiment: Path, tmp_path: Path, *, strategy: str = "default", env: dict[str, str]
) -> dict[str, Any]:
    """`chaos run` itself against the same cluster; its journal.json."""
    journal = tmp_path / f"chaos-{experiment.stem}-{strategy}.json"
    subprocess.run(
        [str(CHAOS), "--no-log-file", "run", "--journal-path", str(journal), "--rollback-strategy", strategy,
         str(experiment)],
        env={**os.environ, **env, "KUBECONFIG": str(world.kubeconfig),
             **({"KUBERNETES_CONTEXT": world.context} if world.context else {})},
        capture_output=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(journal.read_text())
    return data


def _runs(journal: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["activity"]["name"], r["status"]) for r in journal.get("run") or []]


def _rollbacks(journal: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["activity"]["name"], r["status"]) for r in journal.get("rollbacks") or []]


def _drills_rollbacks(sink: Sink) -> list[tuple[str, str]]:
    phases = [e.phase for e in sink.ctk()]
    if "rollbacks-started" not in phases:
        return []
    after = sink.ctk()[phases.index("rollbacks-started") :]
    return [(e.detail["name"], e.detail["status"]) for e in after if e.phase == "activity"]


@pytest.mark.parametrize("name", ["valid-ref.json", "pauses.json", "inline-secret.json"])
def test_the_corpus_runs_as_chaos_run_runs_it(
    name: str, world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    before = baseline(kube)
    sink = Sink(tmp_path / "drill")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    started = SYSTEM_CLOCK.now()
    handle = faults.inject(_wrap(name), injector, ledger, sink, scenario_dir=CORPUS)
    returned = SYSTEM_CLOCK.now()
    (injected,) = handle.faults
    if name == "pauses.json":
        # T0 is the termination after the 1 s pause; inject() came back long before the 4 s pause ended
        assert (injected.at - started).total_seconds() >= 1.0
        assert (returned - started).total_seconds() < 4.0
        assert not sink.ctk("finished")
    handle.revert(reason="test over")
    assert sink.ctk("finished"), "the revert waits for the method before it plays the rollbacks"
    ours = json.loads((tmp_path / "drill" / "chaostoolkit-journal.json").read_text())
    assert "inline-and-env-t0ken" not in json.dumps(ours)
    assert wait_for_baseline(kube, before) == []
    theirs = _chaos_run(world, CORPUS / name, tmp_path, env={"DRILLS_CTK_TOKEN": "inline-and-env-t0ken"})
    assert _runs(ours) == _runs(theirs) and _runs(ours), (_runs(ours), _runs(theirs))
    assert ours["status"] == theirs["status"] and ours["deviated"] == theirs["deviated"]
    if name == "valid-ref.json":
        assert [n for n, _ in _runs(ours)].count("count-app-pods") == 2  # the probe, then the ref to it
    assert wait_for_baseline(kube, before) == []


@pytest.mark.parametrize(
    ("strategy", "cordoned_after"),
    [("default", False), ("always", False), ("never", True), ("deviated", True)],
)
def test_each_rollback_strategy_plays_the_rollbacks_chaos_run_would(
    strategy: str, cordoned_after: bool, world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    """env-rollback.yaml cordons a node whose label is env-typed configuration the rollback needs resolved."""
    label = "kubernetes.io/hostname=node-a2"
    sc = _wrap(
        "env-rollback.yaml",
        configuration={"node_label": {"type": "env", "key": "DRILLS_CTK_UNSET_LABEL", "default": label}},
        rollback_strategy=strategy,
    )
    sink = Sink(tmp_path / "drill")
    handle = faults.inject(sc, injector, Ledger(tmp_path / "ledger.jsonl"), sink, scenario_dir=CORPUS)
    notes = handle.revert(reason="test over")
    node = resources.get(kube, "Node", "node-a2")
    assert node is not None and bool(node["spec"].get("unschedulable")) is cordoned_after, notes
    if cordoned_after:
        assert any("rollbacks not played" in n and "not restored: uncordon-the-pool" in n for n in notes), (
            notes
        )
        resources.patch(kube, "Node", "node-a2", None, {"spec": {"unschedulable": None}})
    else:
        assert any("uncordon-the-pool: succeeded" in n for n in notes), notes
    theirs = _chaos_run(
        world, CORPUS / "env-rollback.yaml", tmp_path, strategy=strategy, env={"DRILLS_CTK_NODE_LABEL": label}
    )
    assert _drills_rollbacks(sink) == _rollbacks(theirs)
    node = resources.get(kube, "Node", "node-a2")
    if node is not None and node["spec"].get("unschedulable"):
        resources.patch(kube, "Node", "node-a2", None, {"spec": {"unschedulable": None}})


def test_a_hypothesis_that_fails_before_the_fault_injects_nothing(
    world: ClusterHandle, kube: Kube, injector: Kube, tmp_path: Path
) -> None:
    before = baseline(kube)
    sink = Sink(tmp_path / "drill")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(SteadyStateNotMet, match="nothing was injected") as e:
        faults.inject(_wrap("hypothesis-fails.json"), injector, ledger, sink, scenario_dir=CORPUS)
    assert e.value.exit_code == 7
    assert [ev.detail["met"] for ev in sink.ctk("hypothesis-before")] == [False]
    assert not sink.ctk("method-started") and ledger.pending() == []
    assert wait_for_baseline(kube, before) == []
    theirs = _chaos_run(world, CORPUS / "hypothesis-fails.json", tmp_path, env={})
    assert theirs["steady_states"]["before"]["steady_state_met"] is False and _runs(theirs) == []


SLOW_DRAIN = """\
id: ctk-slow-drain
title: A Chaos Toolkit drain takes its time
category: chaos
impact: {{users_affected_pct: 0.5, service_status: minor, data_loss_risk: none, revenue_impact: low}}
faults:
  - kind: chaostoolkit
    experiment: {experiment}
    configuration:
      node_label: {{type: env, key: DRILLS_CTK_UNSET_DRAIN, default: "kubernetes.io/hostname={node}"}}
steady_state:
  healthy_for: 3s
  probes:
    - probe: nodes-ready
      min_ready: 4
      schedulable: true
expected_response:
  mitigations: [uncordon]
detection:
  alert_for: 1s
time_budget: 3m
"""


def test_a_slow_drain_pages_the_responder_timed_from_the_drains_start(
    world: ClusterHandle, kube: Kube, tmp_path: Path
) -> None:
    # a node that runs an app pod: its eviction is what chaosk8s waits for, in 10 s steps
    pods, _ = resources.list_objects(kube, "Pod", "production", label_selector="app=myapp")
    node = sorted(p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName"))[0]
    experiment = tmp_path / "slow-drain.yaml"
    shutil.copy(CORPUS / "slow-drain.yaml", experiment)
    path = tmp_path / "ctk-slow-drain.yaml"
    path.write_text(SLOW_DRAIN.format(experiment=experiment.name, node=node))
    out = StringIO()
    scale = 0.05
    defaults = SlaTargets()
    policy = Policy(sla=SlaOverrides(**{k: getattr(defaults, k) * scale for k in SlaTargets.model_fields}))
    result = DrillRun(
        path,
        DrillOptions(
            policy=policy,
            responder=ResponderOptions("bot:good", seed=3, time_scale=scale),
            cluster=ClusterTarget(name=world.name, handle=world),
            reporting=ReportingOptions(
                dashboard=False, console=Console(file=out, width=160), record_history=False
            ),
            handle_signals=False,
        ),
    ).execute()
    events = read_journal(result.journal_path).events
    console = out.getvalue()
    assert result.outcome == Outcome.RESOLVED, (result.reason, console)

    # T0: the API server's record of the drain's first write (the cordon), within 1 s
    started = next(e for e in events if isinstance(e, DrillStarted)).at
    assert world.audit_log is not None
    records = [
        AuditRecord.parse(json.loads(line)) for line in world.audit_log.read_text().splitlines() if line
    ]
    cordon = min(
        r.received
        for r in records
        if r is not None and r.ok and r.is_write and r.resource == "nodes" and r.name == node and r.received >= started
    )  # fmt: skip
    t0 = next(e for e in events if isinstance(e, FaultInjected)).at
    assert abs((t0 - cordon).total_seconds()) <= 1.0, (t0, cordon)
    # the page went out while chaosk8s was still waiting for the evicted pods
    page = next(e for e in events if isinstance(e, PageSent))
    finished = next(e for e in events if isinstance(e, ChaosToolkitEvent) and e.phase == "finished")
    assert page.at < finished.at, (page.at, finished.at)
    alert = next(e for e in events if isinstance(e, AlertFired))
    ack = next(e for e in events if isinstance(e, Acknowledged))
    clocks = result.scorecard.clocks
    assert (
        clocks.ttd is not None
        and abs(clocks.ttd.total_seconds() - (alert.at - cordon).total_seconds()) <= 1.0
    )
    assert (
        clocks.tta is not None and abs(clocks.tta.total_seconds() - (ack.at - cordon).total_seconds()) <= 1.0
    )
    # the experiment shown, the noise kept out of the console
    assert "Chaos Toolkit action drain-one-node: succeeded" in console, console
    assert "1 of 1 activities succeeded" in console
    for noise in ("Traceback", "HTTP response headers", "Content-Type", "Audit-Id"):
        assert noise not in console
    assert (result.drill_dir / "chaostoolkit.log").read_text()
    versions = next(e for e in events if isinstance(e, ChaosToolkitEvent) and e.phase == "started").detail
    assert versions["chaoslib_version"] and versions["chaosk8s_version"]
    reverted = next(e for e in events if isinstance(e, FaultReverted))
    assert reverted.ok and "uncordon-the-node: succeeded" in json.dumps(reverted.detail)


@pytest.mark.parametrize(
    ("func", "arguments", "safety", "refused"),
    [
        ("kill_microservice", {"name": "app", "ns": "production"}, {"max_pods": 2}, "pods"),
        ("scale_microservice", {"name": "app", "ns": "production", "replicas": 0}, {"max_pods": 2}, "pods"),
        ("delete_pods", {"label_selector": "app=myapp", "ns": "production"}, {"max_pods": 2}, "pods"),
        ("drain_nodes", {"label_selector": "kubernetes.io/hostname=node-a1", "count": 1,
                         "pod_namespace": "production"}, {"max_nodes": 0}, "node"),
    ],
)  # fmt: skip
def test_the_blast_radius_of_actions_that_remove_or_move_pods_is_refused_before_the_method(
    func: str,
    arguments: dict[str, Any],
    safety: dict[str, int],
    refused: str,
    world: ClusterHandle,
    injector: Kube,
    tmp_path: Path,
) -> None:
    module = "chaosk8s.node.actions" if func == "drain_nodes" else (
        "chaosk8s.pod.actions" if func == "delete_pods" else "chaosk8s.actions"
    )  # fmt: skip
    experiment = tmp_path / "radius.json"
    experiment.write_text(json.dumps({
        "title": f"{func} beyond the caps", "description": "refused before it runs",
        "method": [{"type": "action", "name": func,
                    "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}}],
    }))  # fmt: skip
    sc = variant("chaostoolkit-terminate-pod", {"kind": "chaostoolkit", "experiment": str(experiment)})
    sc = sc.model_copy(update={"safety": sc.safety.model_copy(update=safety)})
    plan = faults.plan_scenario(sc, injector, scenario_dir=tmp_path)
    assert plan.radius.pods >= (3 if func != "drain_nodes" else 0)
    assert any(refused in r for r in plan.refusals), plan.refusals
    sink = Sink(tmp_path / "drill")
    with pytest.raises(SafetyError):
        faults.inject(sc, injector, Ledger(tmp_path / "ledger.jsonl"), sink, scenario_dir=tmp_path)
    assert sink.ctk() == []  # the method never started
