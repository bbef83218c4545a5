"""Programs on the real embedded cluster: the quarterly DR plan with bots, the CronJob, the game master's view.

- The shipped quarterly DR plan (namespace lost and restored from the backup manifests, a dependency failed
  over, a bad release rolled back) runs with the scripted responders, every runbook step checked against the
  live cluster, and writes the combined report; the monthly report then counts its three drills as drills,
  apart from real incidents.
- The rendered CronJob is validated by the API server itself (``kubectl apply --dry-run=server``).
- ``drill observe`` follows a running drill in a second tmux window, read-only; the capture is kept as a
  test artifact (text, HTML and PNG).

Bots run with ``time_scale`` compressing their offsets and the SLA targets scaled alike (as in
tests/test_run_cluster.py); the scenarios' healthy windows are not scaled, which is what a drill's length is
mostly made of.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from terminal_shots import save_capture, screenshot

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.files.plans import load_plan
from drills.adapters.files.scenarios import load_model
from drills.adapters.schedule_install import render_cronjob
from drills.adapters.store.history import History
from drills.adapters.store.journal import read_journal
from drills.model.events import RunbookStep
from drills.model.policy import Policy, SlaOverrides, SlaTargets
from drills.model.schedule import MonthlySchedule
from drills.reporting.catalog import scan
from drills.reporting.monthly import monthly_report, render_monthly_markdown
from drills.runner.options import DrillOptions, ReportingOptions, ResponderOptions
from drills.runner.plans import cluster_checkers, run_drill_launcher, run_plan

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SCALE = 0.05


def scaled_policy(factor: float) -> Policy:
    defaults = SlaTargets()
    return Policy(sla=SlaOverrides(**{k: getattr(defaults, k) * factor for k in SlaTargets.model_fields}))


@pytest.fixture
def drill_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ClusterHandle
) -> Iterator[ClusterHandle]:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DRILLS_REPORTS", str(tmp_path / "reports"))
    yield world


# ---- the monthly test's CronJob -------------------------------------------------------------------------


def _dry_run(kubectl: Any, manifest: str) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)


def test_rendered_cronjob_validates_against_the_api_server(kubectl: Any) -> None:
    schedule = load_model(ROOT / "scenarios" / "schedules" / "monthly.yaml", MonthlySchedule)
    text = (ROOT / "scenarios" / "schedules" / "monthly.yaml").read_text()
    manifest = render_cronjob(schedule, text, namespace="default")
    ok = _dry_run(kubectl, manifest)
    assert ok.returncode == 0, ok.stderr
    assert "cronjob.batch/drills-monthly-chaos-test created (server dry run)" in ok.stdout
    assert "configmap/drills-schedule created (server dry run)" in ok.stdout
    assert "persistentvolumeclaim/drills-state created (server dry run)" in ok.stdout
    # Nothing was created: it was only validated.
    assert kubectl("get", "cronjob", "-n", "default", "-o", "name").stdout.strip() == ""

    # The server really validates: a time zone it does not know is refused.
    bad = render_cronjob(schedule.model_copy(update={"timezone": "Mars/Olympus_Mons"}), text)
    refused = _dry_run(kubectl, bad)
    assert refused.returncode != 0
    assert "timeZone" in refused.stderr and "Mars/Olympus_Mons" in refused.stderr


# ---- the quarterly DR plan -------------------------------------------------------------------------------


RELEASE_PLAN = """\
id: release-only
title: "One drill: roll back a bad release"
objectives: [A crashing release is rolled back within 15 minutes]
teams: [{id: app, name: Application team}]
entries:
  - id: release-rollback
    scenario: bad-deploy-rollback
    team: app
    responder: bot:good
    rto: 15m
    runbook:
      - name: Roll back to the last good release
        owner: lucia
        command: kubectl rollout undo deployment/app -n production
        check:
          kubectl: get deployment app -n production -o jsonpath={.spec.template.spec.containers[0].image}
          expect: myapp:v2.0.0
        rto: 10m
      - name: Every replica ready on the good release
        owner: kofi
        check:
          probe: {probe: deployment-available, name: app, min_available: 3}
        rto: 15m
"""


@pytest.mark.timeout(900)
def test_a_plan_entry_times_its_runbook_steps_on_the_real_cluster(
    drill_env: ClusterHandle, tmp_path: Path
) -> None:
    plan_file = tmp_path / "release.yaml"
    plan_file.write_text(RELEASE_PLAN)
    loaded = load_plan(plan_file)
    launcher = run_drill_launcher(
        cluster_name=drill_env.name,
        cluster=drill_env,
        seed=11,
        policy=scaled_policy(SCALE),
        options=DrillOptions(
            responder=ResponderOptions(time_scale=SCALE),
            reporting=ReportingOptions(console=Console(file=StringIO(), width=120)),
            handle_signals=False,
        ),
    )
    result = run_plan(
        loaded,
        launcher=launcher,
        checkers=cluster_checkers(Path(drill_env.kubeconfig), drill_env.context),
        out_dir=tmp_path / "reports" / "plan-release-only",
    )
    (entry,) = result.entries
    assert entry.error is None, entry.trace
    assert entry.scorecard is not None and entry.t0 is not None and entry.journal is not None
    undo, ready = entry.steps
    assert undo.status == "done", undo.detail
    assert ready.status == "done", ready.detail
    assert undo.started == entry.t0 and ready.started == undo.done
    # The bot rolls back at 1m45s x SCALE after the page: the first step cannot be confirmed before that.
    events = read_journal(entry.journal).events
    rollback = next(
        e
        for e in events
        if e.type == "action.observed" and e.kind.value == "rollback"  # type: ignore[union-attr]
    )
    # the observer stamps the rollback when its watch delivers it, a few ms after the API server took it
    assert undo.done is not None and undo.done >= rollback.at - timedelta(seconds=1)
    assert (undo.done - rollback.at).total_seconds() < 5  # polled every second
    assert entry.rto_met and result.objectives_met
    assert entry.report_dir is not None and (entry.report_dir / "scorecard.json").is_file()
    assert "Roll back to the last good release" in result.report.markdown.read_text()  # type: ignore[union-attr]


@pytest.mark.timeout(1800)  # three drills; a drill that cannot be mitigated runs to its 45m budget
def test_quarterly_dr_plan_with_bots_produces_the_combined_report(
    drill_env: ClusterHandle, tmp_path: Path
) -> None:
    loaded = load_plan(ROOT / "scenarios" / "plans" / "quarterly-dr.yaml")
    launcher = run_drill_launcher(
        cluster_name=drill_env.name,
        cluster=drill_env,
        seed=11,
        policy=scaled_policy(SCALE),
        options=DrillOptions(
            responder=ResponderOptions(time_scale=SCALE),
            reporting=ReportingOptions(console=Console(file=StringIO(), width=120)),
            handle_signals=False,
        ),
    )
    started = time.monotonic()
    result = run_plan(
        loaded,
        launcher=launcher,
        checkers=cluster_checkers(Path(drill_env.kubeconfig), drill_env.context),
        out_dir=tmp_path / "reports" / "plan-quarterly-dr",
    )
    took = time.monotonic() - started
    print(f"quarterly DR plan: 3 drills in {took:.0f} s")
    # Kept whatever happens next, so a failed run can be read.
    assert result.report is not None
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(result.report.markdown, ARTIFACTS / "plan-report.md")
    shutil.copy(result.report.html, ARTIFACTS / "plan-report.html")
    screenshot(result.report.html, ARTIFACTS / "plan-report.png", size=(1280, 1400))

    by_id = {e.entry_id: e for e in result.entries}
    for e in result.entries:
        assert e.error is None, f"{e.entry_id}: {e.error}\n{e.trace or ''}"
        assert e.scorecard is not None and e.t0 is not None
        assert e.report_dir is not None and (e.report_dir / "postmortem.md").is_file()
        assert e.report_dir is not None and (e.report_dir / "report.html").is_file()
        for s in e.steps:
            assert s.status == "done", f"{e.entry_id} / {s.name}: {s.status}: {s.detail}"
            assert s.done is not None and s.done >= e.t0
        # the steps are in the drill's own journal too
        marks = [x for x in read_journal(e.journal).events if isinstance(x, RunbookStep)]
        assert [m.status for m in marks] == ["started", "done"] * len(e.steps)
        assert e.scorecard.mode == "dr"

    # Sequence: each drill started after the previous one ended.
    ns, db, rel = by_id["namespace-restore"], by_id["database-failover"], by_id["release-rollback"]
    assert ns.ended is not None and db.started is not None and ns.ended <= db.started
    assert db.ended is not None and rel.started is not None and db.ended <= rel.started

    # The namespace really was restored from the backup manifests, within its objectives.
    assert ns.rto_met and ns.recovery is not None
    assert ns.data_age is not None and ns.rpo_met  # the backup files are younger than a day
    assert result.objectives_met, [(e.entry_id, e.recovery, e.rto) for e in result.entries]

    # The combined report: per team, per step, against the objectives.
    assert result.report is not None
    md = result.report.markdown.read_text()
    for team in ("## Platform team", "## Data team", "## Application team"):
        assert team in md
    assert "Restore the namespace from the backup manifests" in md and "Fail over the dependency" in md
    data = json.loads(result.report.json.read_text())
    assert [e["team"] for e in data["entries"]] == ["platform", "data", "app"]
    assert all(s["status"] == "done" for e in data["entries"] for s in e["steps"])

    # The monthly report counts the three as drills, apart from real incidents.
    catalog = scan(tmp_path / "reports")
    assert not catalog.problems
    month = f"{ns.started:%Y-%m}" if ns.started else f"{datetime.now(UTC):%Y-%m}"
    report = monthly_report(catalog.summaries, month)
    assert report.drills.total == 3 and report.incidents.total == 0
    assert report.drills.by_severity.get("P0", 0) >= 2  # the namespace loss and the dependency outage
    monthly_md = render_monthly_markdown(report)
    assert "Drills" in monthly_md
    (ARTIFACTS / "monthly-after-plan.md").write_text(monthly_md)

    # Every drill is in the trainee history as a finished DR drill of the plan's teams.
    with History() as h:
        finished = [d for d in h.drills() if d.status.value == "finished"]
    assert len(finished) == 3


# ---- the game master's second screen ---------------------------------------------------------------------

TMUX = shutil.which("tmux")


@pytest.mark.tmux
@pytest.mark.timeout(900)
@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_game_master_observes_a_running_drill_read_only(drill_env: ClusterHandle, tmp_path: Path) -> None:
    """A drill runs in one tmux window, `drill observe` in another; the journal is never written by it."""
    assert TMUX is not None
    socket = str(tmp_path / "tmux.sock")
    env = {
        **os.environ,
        "DRILLS_STATE": os.environ["DRILLS_STATE"],
        "DRILLS_REPORTS": os.environ["DRILLS_REPORTS"],
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "COLUMNS": "110",
        "LINES": "48",
    }
    drill = [sys.executable, "-c", "from drills.cli import main; main()"]
    run_cmd = " ".join(
        [
            *drill[:2],
            repr(drill[2]),
            "run",
            "bad-deploy-rollback",
            "--responder",
            "bot:good",
            "--cluster",
            drill_env.name,
            "--no-dashboard",
            "--seed",
            "5",
        ]
    )
    tmux = [TMUX, "-S", socket]

    def pane(target: str) -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-e", "-t", target],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    # Each window's command is followed by a pause, so its last screen stays there to capture.
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            "gm",
            "-x",
            "110",
            "-y",
            "48",
            "-n",
            "drill",
            f"{run_cmd}; echo drill exited $?; sleep 900",
        ],
        env=env,
        check=True,
    )
    try:
        state = Path(os.environ["DRILLS_STATE"])
        deadline = time.monotonic() + 120
        journal: Path | None = None
        while time.monotonic() < deadline and journal is None:
            found = sorted(state.glob("drills/*/journal.jsonl"))
            journal = found[0] if found else None
            time.sleep(0.5)
        assert journal is not None, f"the drill never started:\n{pane('gm:drill')}"
        drill_id = journal.parent.name
        # Wait until the fault is in, so the screen has something to show.
        while time.monotonic() < deadline and "fault.injected" not in journal.read_text():
            time.sleep(0.5)
        observe_cmd = " ".join(
            [
                *drill[:2],
                repr(drill[2]),
                "observe",
                "--drill",
                drill_id,
                "--as",
                "gm-cleo",
                "--refresh",
                "0.5",
            ]
        )
        subprocess.run(
            [*tmux, "new-window", "-t", "gm", "-n", "observe", f"{observe_cmd}; sleep 900"],
            env=env,
            check=True,
        )
        before = journal.stat()
        time.sleep(12)
        capture = pane("gm:observe")
        paths = save_capture(capture, ARTIFACTS, "observe", width=110)
        plain = paths["txt"].read_text()
        assert f"observing {drill_id}" in plain
        assert "read-only" in plain
        # The drill goes on writing; the observer only reads: every line in the journal came from the drill.
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline and "drill.ended" not in journal.read_text():
            time.sleep(1)
        assert "drill.ended" in journal.read_text()
        time.sleep(3)
        final = pane("gm:observe")
        ended = save_capture(final, ARTIFACTS, "observe-ended", width=110)
        assert "drill ended" in ended["txt"].read_text()
        assert journal.stat().st_size >= before.st_size
        events = read_journal(journal).events
        assert not any((e.actor or "").startswith("gm-cleo") for e in events)
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, check=False, capture_output=True)
    with History() as h:
        cleo = h.trainee("gm-cleo")
    assert [d.drill_id for d in cleo.drills] == [drill_id]
    assert {r.value for r in cleo.drills[0].roles} == {"observer"}
