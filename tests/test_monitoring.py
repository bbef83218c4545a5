"""The monitoring stack: rendered configs that Prometheus' and Alertmanager's own tools accept, and (on the real
embedded cluster with real Prometheus and Alertmanager) the whole detection chain: a fault changes the
cluster, a rule fires, Alertmanager's webhook reaches drills, TTD matches the alert's startsAt, resolving the
fault resolves the alert, a missing rule is a detection gap, and stopping the stack leaves no process.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from drills.adapters.files.scenarios import load_scenario
from drills.adapters.inbound.webhooks import parse_time
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.store.journal import JOURNAL_FILE, Journal, read_journal
from drills.adapters.store.paths import drill_dir, scenarios_dir
from drills.engine.scoring import score
from drills.engine.timeline import compute_clocks
from drills.errors import MonitoringError
from drills.model.events import AlertFired, AlertResolved, Detected, DrillStarted, Event, Mode, Note, Source
from drills.model.scenario import Scenario
from drills.runner.detection_chain import MonitoringDetector
from drills.runner.detector import DetectionContext, available_detectors
from drills.timing import SYSTEM_CLOCK

INSTALLED = shutil.which("prometheus") is not None and (
    shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
)
needs_stack = pytest.mark.skipif(
    not INSTALLED, reason=f"Prometheus/Alertmanager missing: {monitoring.APT_LINE}"
)


# ---- finding binaries ------------------------------------------------------------------------------------


def test_missing_binaries_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(MonitoringError) as e:
        monitoring.find_binaries({"PATH": str(tmp_path)})
    assert "prometheus and prometheus-alertmanager not found" in e.value.message
    assert (
        e.value.hint is not None and "apt-get install -y prometheus prometheus-alertmanager" in e.value.hint
    )


def test_configured_binary_must_be_executable(tmp_path: Path) -> None:
    not_exec = tmp_path / "prometheus"
    not_exec.write_text("")
    with pytest.raises(MonitoringError, match="DRILLS_PROMETHEUS_BINARY"):
        monitoring.find_binaries({"PATH": "", "DRILLS_PROMETHEUS_BINARY": str(not_exec)})


# ---- rendered configs, checked by promtool and amtool ----------------------------------------------------


def _receivers(tmp_path: Path, *, team: bool) -> monitoring.Receivers:
    token = tmp_path / "token"
    token.write_text("t0ken")
    return monitoring.Receivers(
        webhook_url="http://127.0.0.1:9999/alertmanager",
        webhook_token_file=token,
        pagerduty_routing_key_file=token if team else None,
        pagerduty_url="http://127.0.0.1:9998/v2/enqueue" if team else None,
        slack_api_url_file=token if team else None,
        slack_channel="#incident-response" if team else None,
    )


@needs_stack
@pytest.mark.monitoring
@pytest.mark.parametrize("team", [False, True])
def test_alertmanager_config_passes_amtool_and_holds_no_secret(tmp_path: Path, team: bool) -> None:
    cfg = monitoring.render_alertmanager_config(
        monitoring.MonitoringSettings(), _receivers(tmp_path, team=team)
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "t0ken" not in path.read_text()
    route = cfg["route"]
    assert route["receiver"] == "drills" and route["group_by"] == ["..."] and route["group_wait"] == "1s"
    webhook = cfg["receivers"][0]["webhook_configs"][0]
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["credentials_file"] == str(tmp_path / "token")
    names = [r["name"] for r in cfg["receivers"]]
    assert names == (["drills", "pagerduty", "slack"] if team else ["drills"])


@needs_stack
@pytest.mark.monitoring
def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(monitoring.render_rules(monitoring.load_rules(), monitoring.MonitoringSettings()))
    )
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("x")
    targets = [
        monitoring.ScrapeTarget(job="kube-state-metrics", address="127.0.0.1:1"),
        monitoring.ScrapeTarget(
            job="apiserver",
            address="127.0.0.1:2",
            scheme="https",
            tls=monitoring.TlsFiles(tmp_path / "ca.crt", tmp_path / "client.crt", tmp_path / "client.key"),
        ),
        monitoring.ScrapeTarget(
            job="kube-scheduler",
            address="127.0.0.1:3",
            scheme="https",
            tls=monitoring.TlsFiles(insecure_skip_verify=True),
        ),
    ]
    cfg = monitoring.render_prometheus_config(
        monitoring.MonitoringSettings(), targets, alertmanager="127.0.0.1:4", rule_files=[rules]
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert cfg["global"]["scrape_interval"] == "2s" and cfg["global"]["evaluation_interval"] == "2s"
    assert cfg["scrape_configs"][0]["honor_labels"] is True


def test_apiserver_target_from_a_kubeconfig_with_embedded_credentials(tmp_path: Path) -> None:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "current-context": "other",
                "contexts": [
                    {"name": "drills-x", "context": {"cluster": "c", "user": "u"}},
                    {"name": "other", "context": {"cluster": "nope", "user": "nope"}},
                ],
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://127.0.0.1:6443",
                            "certificate-authority-data": b64("CA"),
                        },
                    }
                ],
                "users": [
                    {
                        "name": "u",
                        "user": {"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")},
                    }
                ],
            }
        )
    )
    target = monitoring.apiserver_target(kubeconfig, "drills-x", tmp_path / "tls")
    assert target.address == "127.0.0.1:6443" and target.scheme == "https"
    assert target.tls is not None and target.tls.key_file is not None and target.tls.ca_file is not None
    assert target.tls.key_file.read_text() == "KEY" and target.tls.ca_file.read_text() == "CA"
    assert oct(target.tls.key_file.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(MonitoringError, match="no context"):
        monitoring.apiserver_target(kubeconfig, "missing", tmp_path / "tls")


def test_control_plane_targets_from_kwokctl_config(tmp_path: Path) -> None:
    (tmp_path / "kwok.yaml").write_text(
        "kind: Stage\n---\nkind: KwokctlConfiguration\noptions:\n  kubeControllerManagerPort: 32749\n"
        "  kubeSchedulerPort: 32748\n  securePort: true\n"
    )
    targets = monitoring.control_plane_targets(tmp_path)
    assert [(t.job, t.address, t.scheme) for t in targets] == [
        ("kube-controller-manager", "127.0.0.1:32749", "https"),
        ("kube-scheduler", "127.0.0.1:32748", "https"),
    ]
    assert monitoring.control_plane_targets(None) == []
    assert monitoring.control_plane_targets(tmp_path / "missing") == []


def test_monitoring_detector_is_registered() -> None:
    assert "monitoring" in available_detectors()


# ---- the real chain on the embedded cluster ----------------------------------------------------------------


def _listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets process ``pid`` listens on (from /proc, IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                addr, port = parts[1].split(":")
                if width == 8:
                    ip = ".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0))
                else:
                    ip = "::1" if addr == "00000000000000000000000001000000" else addr
                found.append(f"{ip}:{int(port, 16)}")
    return found


@pytest.fixture(scope="module")
def stack(drill_cluster: Any) -> Iterator[monitoring.MonitoringStack]:
    started = time.monotonic()
    st = monitoring.start_monitoring(drill_cluster, progress=False)
    print(f"\nmonitoring stack up in {time.monotonic() - started:.1f} s")
    try:
        yield st
    finally:
        monitoring.stop_monitoring(drill_cluster.name)


class Drill:
    """A drill's skeleton around the real parts: journal, monitoring detector, E's fault injection."""

    def __init__(self, cluster: Any, scenario: Scenario, detector: MonitoringDetector) -> None:
        self.cluster = cluster
        self.scenario = scenario
        self.detector = detector
        self.drill_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{scenario.id}"[:60]
        started = DrillStarted(
            at=SYSTEM_CLOCK.now(),
            source=Source.SYSTEM,
            drill_id=self.drill_id,
            scenario_id=scenario.id,
            scenario_title=scenario.title,
            category=scenario.category,
            service=scenario.service,
            namespace=scenario.target.namespace,
            true_severity=scenario.true_severity,
            mode=Mode.TRAINING,
            expected_alert=scenario.detection.expected_alert,
        )
        self.journal = Journal.create(drill_dir(self.drill_id) / JOURNAL_FILE, started)
        self.ctx = DetectionContext(
            drill_id=self.drill_id,
            scenario=scenario,
            journal=self.journal,
            clock=SYSTEM_CLOCK,
            drill_dir=drill_dir(self.drill_id),
            cluster=cluster,
        )
        self.handle: Any = None

    def events(self) -> list[Event]:
        return read_journal(self.journal.path).events

    def inject(self) -> None:
        from drills.adapters.faults import inject
        from drills.adapters.faults.ledger import Ledger

        self.detector.prepare(self.ctx)
        self.handle = inject(
            self.scenario, self.cluster.kube(), Ledger.for_drill(self.drill_id), self.journal, SYSTEM_CLOCK
        )
        self.detector.start(self.ctx)

    def wait_for(self, what: Callable[[list[Event]], bool], timeout: float) -> list[Event]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if what(events):
                return events
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f}s; journal: {[e.type for e in self.events()]}")

    def revert(self) -> None:
        if self.handle is not None and not self.handle.reverted:
            self.handle.revert(reason="test")


@pytest.fixture
def drill_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Journals and ledgers of these drills go to the test's directory (the cluster stays where it is).
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    return tmp_path


def _fired(name: str) -> Callable[[list[Event]], bool]:
    return lambda events: any(isinstance(e, AlertFired) and e.alert_name == name for e in events)


@needs_stack
@pytest.mark.cluster
@pytest.mark.monitoring
@pytest.mark.parametrize(
    ("scenario_file", "alert"),
    [
        ("crash-loop-delete-pods.yaml", "KubePodCrashLooping"),
        ("bad-deploy-rollback.yaml", "KubePodCrashLooping"),
        ("node-not-ready-drain.yaml", "KubeNodeNotReady"),
    ],
)
def test_fault_fires_its_alert_through_alertmanager_and_resolving_it_resolves_the_alert(
    drill_cluster: Any,
    stack: monitoring.MonitoringStack,
    drill_state: Path,
    reset_fixtures: Callable[[], None],
    scenario_file: str,
    alert: str,
) -> None:
    scenario = load_scenario(scenarios_dir() / scenario_file)
    assert scenario.detection.expected_alert == alert
    drill = Drill(drill_cluster, scenario, MonitoringDetector())
    try:
        drill.inject()
        events = drill.wait_for(_fired(alert), timeout=120)
        fired = next(e for e in events if isinstance(e, AlertFired) and e.alert_name == alert)

        # Alertmanager's own record of the alert: the journal's `at` is its startsAt.
        am = [a for a in monitoring.alertmanager_alerts(stack) if a["fingerprint"] == fired.fingerprint]
        assert am, "Alertmanager no longer holds the alert drills recorded"
        starts_at = parse_time(am[0]["startsAt"], what="startsAt")
        assert abs((fired.at - starts_at).total_seconds()) < 1
        assert fired.received_at is not None and fired.received_at >= fired.at
        assert fired.rule_delay_seconds is not None and fired.rule_delay_seconds > 0

        # The scorecard's TTD is startsAt - T0 (fault accepted by the API server).
        card = score(events)
        t0 = card.clocks.t0
        assert t0 is not None and card.clocks.ttd is not None
        first_alert = min(e.at for e in events if isinstance(e, AlertFired))
        assert abs((card.clocks.ttd - (first_alert - t0)).total_seconds()) < 1
        if first_alert == fired.at:
            assert abs((card.clocks.ttd - (starts_at - t0)).total_seconds()) < 1
        assert card.clocks.alert_delivery_delay is not None
        assert timedelta(0) <= card.clocks.alert_delivery_delay < timedelta(seconds=10)
        assert not card.clocks.detection_gap
        print(
            f"\n{scenario.id}: TTD {card.clocks.ttd.total_seconds():.1f} s "
            f"(rule delay {fired.rule_delay_seconds:.0f} s, delivery {card.clocks.alert_delivery_delay.total_seconds():.2f} s)"
        )

        drill.revert()
        events = drill.wait_for(
            lambda evs: any(isinstance(e, AlertResolved) and e.fingerprint == fired.fingerprint for e in evs),
            timeout=180,
        )
        resolved = next(
            e for e in events if isinstance(e, AlertResolved) and e.fingerprint == fired.fingerprint
        )
        assert resolved.at > fired.at
    finally:
        drill.revert()
        drill.detector.stop()
        reset_fixtures()
    notes = [e.text for e in drill.events() if isinstance(e, Note)]
    assert not any("detection gap" in n for n in notes)


@needs_stack
@pytest.mark.cluster
@pytest.mark.monitoring
def test_a_missing_rule_is_a_detection_gap_and_human_detection_is_still_timed(
    drill_cluster: Any,
    stack: monitoring.MonitoringStack,
    drill_state: Path,
    reset_fixtures: Callable[[], None],
) -> None:
    # bad-deploy: the same fault that fires KubePodCrashLooping in the test above, so the gap is the rules'.
    scenario = load_scenario(scenarios_dir() / "bad-deploy-rollback.yaml")
    # The team's rules have no crash-loop rule (nor anything else a crashing rollout trips).
    only_jobs = monitoring.render_rules(
        monitoring.load_rules(), monitoring.MonitoringSettings(), only=["KubeJobFailed"]
    )
    drill = Drill(drill_cluster, scenario, MonitoringDetector(rules=only_jobs))
    try:
        drill.inject()
        assert drill.detector.report is not None and drill.detector.report.rule_missing
        # Long enough for the real rule to have fired twice over (10 s for: + scrape + evaluation).
        time.sleep(35)
        assert not any(isinstance(e, AlertFired) for e in drill.events())
        # The responder notices by hand, from another terminal.
        from drills.cli import cli

        result = CliRunner().invoke(
            cli, ["detect", "--drill", drill.drill_id, "--as", "alice", "pods", "restarting"]
        )
        assert result.exit_code == 0, result.output
    finally:
        drill.revert()
        drill.detector.stop()
        monitoring.reload_rules(
            stack, monitoring.render_rules(monitoring.load_rules(), monitoring.MonitoringSettings())
        )
        reset_fixtures()
    events = drill.events()
    notes = [e.text for e in events if isinstance(e, Note)]
    assert any("no alert rule named 'KubePodCrashLooping'" in n for n in notes)
    assert any("detection gap: the expected alert KubePodCrashLooping never fired" in n for n in notes)
    clocks = compute_clocks(events)
    assert clocks.detection_gap
    assert clocks.ttd is None
    detected = next(e for e in events if isinstance(e, Detected))
    assert clocks.ttd_human == detected.at - clocks.t0  # type: ignore[operator]


@needs_stack
@pytest.mark.cluster
@pytest.mark.monitoring
def test_stack_listens_on_loopback_only_and_stopping_leaves_no_process(
    drill_cluster: Any, stack: monitoring.MonitoringStack
) -> None:
    health = monitoring.stack_health(stack)
    assert {h.component for h in health} == {"prometheus", "alertmanager", "exporter"}
    assert all(h.alive and h.ready for h in health)
    for proc in stack.processes:
        addresses = _listening(proc.pid)
        assert addresses, f"{proc.component} listens on nothing?"
        assert all(a.startswith("127.0.0.1:") for a in addresses), (proc.component, addresses)
        assert not any(a.endswith(":9094") for a in addresses)  # Alertmanager's gossip is off
    targets = monitoring._http_json(f"{stack.prometheus_url}/api/v1/targets")["data"]["activeTargets"]
    health_by_job = {t["labels"]["job"]: t["health"] for t in targets}
    assert health_by_job["kube-state-metrics"] == "up"
    assert health_by_job["apiserver"] in ("up", "unknown")  # scraped with the kubeconfig's client cert
    assert "kube-controller-manager" in health_by_job and "kube-scheduler" in health_by_job
    # a second start is a no-op on a healthy stack
    assert (
        monitoring.start_monitoring(drill_cluster, progress=False).processes[0].pid == stack.processes[0].pid
    )


@needs_stack
@pytest.mark.cluster
@pytest.mark.monitoring
def test_drill_env_gives_the_prometheus_url_the_seeds_query_works_against(
    drill_cluster: Any, stack: monitoring.MonitoringStack, drill_state: Path
) -> None:
    import json as jsonlib
    import urllib.request

    from drills.runner.respond import DrillRef, prometheus_lines

    ref = DrillRef("d-env", drill_state, {"cluster": drill_cluster.name})
    export, comment = prometheus_lines(ref)
    assert export == f"export PROMETHEUS_URL={stack.prometheus_url}"
    assert 'curl "$PROMETHEUS_URL/api/v1/query?query=up"' in comment
    url = export.removeprefix("export PROMETHEUS_URL=") + "/api/v1/query?query=up"
    with urllib.request.urlopen(url, timeout=5) as r:
        answer = jsonlib.loads(r.read())
    assert answer["status"] == "success" and answer["data"]["result"], answer
    # no stack for another cluster: no line
    assert prometheus_lines(DrillRef("d-env", drill_state, {"cluster": "drills-nostack"})) == []


@needs_stack
@pytest.mark.cluster
@pytest.mark.monitoring
def test_stop_monitoring_leaves_no_process_behind(
    drill_cluster: Any, stack: monitoring.MonitoringStack
) -> None:
    # Runs last in this module (pytest keeps file order): it stops the module's stack.
    pids = [p.pid for p in stack.processes]
    stopped = monitoring.stop_monitoring(drill_cluster.name)
    assert len(stopped) == 3
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), (
            f"pid {pid} is still there (a zombie counts: it was not reaped)"
        )
    assert not monitoring.monitoring_dir(drill_cluster.name).exists()
    assert monitoring.load_stack(drill_cluster.name) is None
    assert monitoring.stop_monitoring(drill_cluster.name) == []
