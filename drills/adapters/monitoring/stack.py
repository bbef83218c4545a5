"""The monitoring stack a drill is detected by: Prometheus, Alertmanager and the state-metrics exporter.

The detection chain is part of what a drill tests (a missing or slow alert rule is the most common finding of
a real game day), so drills runs the real one: Prometheus from Debian's ``prometheus`` package scrapes the
cluster, evaluates the alert rules of fixtures/prometheus/, and hands firing alerts to Alertmanager (Debian's
``prometheus-alertmanager``), which posts them to drills' webhook receiver (drills.adapters.inbound.webhooks).

drills starts them itself as plain processes (never systemd services), one stack per cluster, with their
config, data, logs and PIDs under ``state_dir()/clusters/<name>/monitoring/``, every port on 127.0.0.1
(Alertmanager's gossip port is switched off: it would bind 0.0.0.0:9094). ``drill cluster down`` calls
:func:`stop_monitoring`, which leaves no process behind.

What Prometheus scrapes:

- ``kube-state-metrics``: drills' exporter (a ``python -m drills.adapters.monitoring.ksm_exporter`` process of the stack)
  or, on kind, the user's real kube-state-metrics (``state_metrics=host:port``);
- ``apiserver``: the API server's own /metrics, with the cluster's admin client certificate (copied from the
  kubeconfig into the stack's directory, readable only by the owner);
- ``kube-controller-manager`` and ``kube-scheduler`` when drills knows their ports (the embedded cluster).

Secrets (the webhook's bearer token, a PagerDuty routing key, a Slack URL) reach Alertmanager through files
of mode 0600 in the stack's directory, written from the environment: Alertmanager cannot read environment
variables, and its config file never contains them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from drills.adapters import processes
from drills.adapters.files.impact import load_slo, slo_paths
from drills.adapters.inbound.webhooks import ALERTMANAGER_PATH, RULE_DELAY_ANNOTATION, TOKEN_ENV, new_token
from drills.adapters.store.paths import clusters_dir, fixtures_dir
from drills.engine.slo import generate_rules
from drills.errors import MonitoringError, UsageError
from drills.model.durations import format_duration
from drills.model.scenario import Scenario
from drills.timing import SYSTEM_CLOCK

APT_LINE = "sudo apt-get install -y prometheus prometheus-alertmanager"

PROMETHEUS_ENV = "DRILLS_PROMETHEUS_BINARY"
ALERTMANAGER_ENV = "DRILLS_ALERTMANAGER_BINARY"
PROMTOOL_ENV = "DRILLS_PROMTOOL_BINARY"
WEBHOOK_PORT_ENV = "DRILLS_WEBHOOK_PORT"
PAGERDUTY_ROUTING_KEY_ENV = "DRILLS_PAGERDUTY_ROUTING_KEY"
PAGERDUTY_EVENTS_URL_ENV = "DRILLS_PAGERDUTY_EVENTS_URL"
SLACK_URL_ENV = "DRILLS_SLACK_WEBHOOK_URL"

LOOPBACK = "127.0.0.1"
STATE_FILE = "stack.json"
RULES_FILE = "rules.yaml"
STATE_METRICS_JOB = "kube-state-metrics"

_SECRET_MODE = 0o600

#: Components of a stack, in the order they start (and the reverse of the order they stop).
COMPONENTS = ("exporter", "alertmanager", "prometheus")


# ---- finding the binaries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringBinaries:
    prometheus: Path
    alertmanager: Path
    promtool: Path | None


def _which(env_name: str, names: Sequence[str], env: Mapping[str, str]) -> Path | None:
    configured = env.get(env_name, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise MonitoringError(
                f"{env_name}={configured} is not an executable file",
                hint=f"point {env_name} at the binary, or unset it to use the one on PATH",
            )
        return path
    for name in names:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return Path(found)
    return None


def find_binaries(env: Mapping[str, str] | None = None) -> MonitoringBinaries:
    """Prometheus and Alertmanager from the environment's settings or PATH (Debian names them
    ``prometheus`` and ``prometheus-alertmanager``; upstream's tarball says ``alertmanager``)."""
    env = os.environ if env is None else env
    prometheus = _which(PROMETHEUS_ENV, ("prometheus",), env)
    alertmanager = _which(ALERTMANAGER_ENV, ("prometheus-alertmanager", "alertmanager"), env)
    missing = [
        n for n, p in (("prometheus", prometheus), ("prometheus-alertmanager", alertmanager)) if p is None
    ]
    if missing or prometheus is None or alertmanager is None:
        raise MonitoringError(
            f"{' and '.join(missing)} not found: drills' detection chain needs Prometheus and Alertmanager",
            hint=f"install them with `{APT_LINE}` (drills starts them itself; no service needed), "
            f"or set {PROMETHEUS_ENV} / {ALERTMANAGER_ENV}",
        )
    return MonitoringBinaries(prometheus, alertmanager, _which(PROMTOOL_ENV, ("promtool",), env))


# ---- settings and rendering ------------------------------------------------------------------------------


def _seconds(td: timedelta) -> str:
    """Prometheus duration text: whole seconds, or milliseconds below a second."""
    total_ms = round(td.total_seconds() * 1000)
    if total_ms % 1000 == 0:
        return f"{total_ms // 1000}s"
    return f"{total_ms}ms"


def parse_prom_duration(text: str) -> timedelta:
    """A Prometheus duration (``15s``, ``1m30s``, ``500ms``, ``1h``) as a timedelta."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, rest = 0.0, str(text).strip()
    if not rest:
        raise ValueError("empty duration")
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise ValueError(f"not a Prometheus duration: {text!r}")
        number, rest = int(rest[:digits]), rest[digits:]
        unit = "ms" if rest.startswith("ms") else rest[:1]
        if unit not in units:
            raise ValueError(f"not a Prometheus duration: {text!r}")
        total += number * units[unit]
        rest = rest[len(unit) :]
    return timedelta(seconds=total)


@dataclass(frozen=True)
class MonitoringSettings:
    """Timings of the stack. Drill-sized by default: a drill measures people, not a 1-minute scrape."""

    scrape_interval: timedelta = timedelta(seconds=2)
    evaluation_interval: timedelta = timedelta(seconds=2)
    #: Alertmanager: wait before the first notification of a group, and between updates of a group.
    group_wait: timedelta = timedelta(seconds=1)
    group_interval: timedelta = timedelta(seconds=2)
    repeat_interval: timedelta = timedelta(hours=1)
    #: Also route alerts to the team's PagerDuty / Slack through Alertmanager (secrets from the environment).
    alertmanager_pagerduty: bool = False
    alertmanager_slack: bool = False
    slack_channel: str | None = None


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    bearer_token_file: Path | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    scheme: str = "http"
    tls: TlsFiles | None = None
    metrics_path: str = "/metrics"


@dataclass(frozen=True)
class Receivers:
    """Where Alertmanager sends notifications: drills always; the team's tools when configured."""

    webhook_url: str
    webhook_token_file: Path
    pagerduty_routing_key_file: Path | None = None
    pagerduty_url: str | None = None
    slack_api_url_file: Path | None = None
    slack_channel: str | None = None


IMPACT_JOB = "drills-impact"
IMPACT_TARGETS_FILE = "impact-targets.json"


def render_prometheus_config(
    settings: MonitoringSettings,
    targets: Sequence[ScrapeTarget],
    *,
    alertmanager: str,
    rule_files: Sequence[Path],
    impact_targets: Path | None = None,
) -> dict[str, Any]:
    scrape_timeout = min(settings.scrape_interval, timedelta(seconds=10))
    jobs: list[dict[str, Any]] = []
    if impact_targets is not None:
        # A drill's virtual users serve their metrics on a port of their own for the drill's length: the
        # runner writes it into this file, which Prometheus re-reads (file service discovery), so the stack
        # needs no restart between drills. honor_labels: the metrics' own `service` label wins.
        jobs.append(
            {
                "job_name": IMPACT_JOB,
                "honor_labels": True,
                "file_sd_configs": [{"files": [str(impact_targets)], "refresh_interval": "1s"}],
            }
        )
    for t in targets:
        job: dict[str, Any] = {
            "job_name": t.job,
            "scheme": t.scheme,
            "metrics_path": t.metrics_path,
            "static_configs": [{"targets": [t.address]}],
        }
        if t.job == STATE_METRICS_JOB:
            # kube-state-metrics' own namespace/pod labels must win over the target's (as its docs advise).
            job["honor_labels"] = True
        if t.tls is not None:
            tls: dict[str, Any] = {}
            if t.tls.ca_file:
                tls["ca_file"] = str(t.tls.ca_file)
            if t.tls.cert_file and t.tls.key_file:
                tls["cert_file"] = str(t.tls.cert_file)
                tls["key_file"] = str(t.tls.key_file)
            if t.tls.insecure_skip_verify:
                tls["insecure_skip_verify"] = True
            if tls:
                job["tls_config"] = tls
            if t.tls.bearer_token_file:
                job["authorization"] = {"type": "Bearer", "credentials_file": str(t.tls.bearer_token_file)}
        jobs.append(job)
    return {
        "global": {
            "scrape_interval": _seconds(settings.scrape_interval),
            "scrape_timeout": _seconds(scrape_timeout),
            "evaluation_interval": _seconds(settings.evaluation_interval),
            "external_labels": {"drills": "true"},
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": jobs,
    }


def render_alertmanager_config(settings: MonitoringSettings, receivers: Receivers) -> dict[str, Any]:
    webhook = {
        "url": receivers.webhook_url,
        "send_resolved": True,
        "max_alerts": 0,
        "http_config": {
            "authorization": {"type": "Bearer", "credentials_file": str(receivers.webhook_token_file)}
        },
    }
    receiver_list: list[dict[str, Any]] = [{"name": "drills", "webhook_configs": [webhook]}]
    routes: list[dict[str, Any]] = []
    if receivers.pagerduty_routing_key_file is not None:
        pd: dict[str, Any] = {
            "routing_key_file": str(receivers.pagerduty_routing_key_file),
            "send_resolved": True,
            "description": "[DRILL] {{ .CommonLabels.alertname }} {{ .CommonAnnotations.summary }}",
        }
        if receivers.pagerduty_url:
            pd["url"] = receivers.pagerduty_url
        receiver_list.append({"name": "pagerduty", "pagerduty_configs": [pd]})
        routes.append({"receiver": "pagerduty", "continue": True})
    if receivers.slack_api_url_file is not None:
        slack: dict[str, Any] = {
            "api_url_file": str(receivers.slack_api_url_file),
            "send_resolved": True,
            "title": "[DRILL] {{ .CommonLabels.alertname }} ({{ .Status }})",
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
        }
        if receivers.slack_channel:
            slack["channel"] = receivers.slack_channel
        receiver_list.append({"name": "slack", "slack_configs": [slack]})
        routes.append({"receiver": "slack", "continue": True})
    route: dict[str, Any] = {
        "receiver": "drills",
        # Every alert its own group: each reaches drills group_wait after it fires, not batched with others.
        "group_by": ["..."],
        "group_wait": _seconds(settings.group_wait),
        "group_interval": _seconds(settings.group_interval),
        "repeat_interval": _seconds(settings.repeat_interval),
    }
    if routes:
        # drills first and always; the team's receivers additionally.
        route["routes"] = [{"receiver": "drills", "continue": True}, *routes]
    return {"route": route, "receivers": receiver_list}


# ---- rules -----------------------------------------------------------------------------------------------


def default_rules_path() -> Path:
    return fixtures_dir() / "prometheus" / "rules.yaml"


def load_rules(path: Path | None = None) -> dict[str, Any]:
    path = path or default_rules_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise MonitoringError(f"cannot read alert rules {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise MonitoringError(f"alert rules {path} are not YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise MonitoringError(f"alert rules {path}: expected a `groups:` list (Prometheus rule file format)")
    return data


def slo_rules(directory: Path | None = None) -> dict[str, Any]:
    """The burn-rate rules generated from the world's SLO files (``fixtures/slo/*.yaml``; docs/impact.md)."""
    groups: list[dict[str, Any]] = []
    for path in slo_paths(directory):
        groups.extend(generate_rules(load_slo(path))["groups"])
    return {"groups": groups}


def shipped_rules() -> dict[str, Any]:
    """What drills' Prometheus runs by default: the Kubernetes alerts and the SLO burn-rate alerts."""
    rules = load_rules()
    return {"groups": [*rules.get("groups", []), *slo_rules()["groups"]]}


def alert_rules(rules: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for group in rules.get("groups", []):
        for rule in group.get("rules", []) if isinstance(group, dict) else []:
            if isinstance(rule, dict) and "alert" in rule:
                yield rule


def rule_names(rules: Mapping[str, Any]) -> list[str]:
    return [str(r["alert"]) for r in alert_rules(rules)]


def render_rules(
    rules: Mapping[str, Any],
    settings: MonitoringSettings,
    *,
    for_overrides: Mapping[str, timedelta] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The rule file Prometheus loads: ``for:`` overridden per alert, a ``rule_delay_seconds`` annotation
    (scrape interval + for:) on each alert, and optionally only the named alerts kept."""
    overrides = dict(for_overrides or {})
    unknown = sorted(set(overrides) - set(rule_names(rules)))
    if unknown:
        raise UsageError(
            f"no alert rule named {', '.join(unknown)} to override",
            hint=f"the rules define: {', '.join(rule_names(rules))}",
        )
    groups: list[dict[str, Any]] = []
    for group in rules.get("groups", []):
        kept: list[dict[str, Any]] = []
        for rule in group.get("rules", []):
            rule = dict(rule)
            if "alert" in rule:
                name = str(rule["alert"])
                if only is not None and name not in only:
                    continue
                if name in overrides:
                    rule["for"] = _seconds(overrides[name])
                for_ = parse_prom_duration(str(rule.get("for", "0s")))
                delay = (settings.scrape_interval + for_).total_seconds()
                rule["annotations"] = {
                    **dict(rule.get("annotations") or {}),
                    RULE_DELAY_ANNOTATION: f"{delay:g}",
                }
            kept.append(rule)
        if kept:
            groups.append({**group, "rules": kept})
    return {"groups": groups}


def rules_for_scenario(
    scenario: Scenario, settings: MonitoringSettings, *, rules: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The rules a drill of ``scenario`` runs with: ``detection.alert_for`` overrides the expected alert's
    ``for:`` (every alert's, when the scenario names none), so a team rehearses with production values."""
    source = rules if rules is not None else shipped_rules()
    override = scenario.detection.alert_for
    overrides: dict[str, timedelta] = {}
    if override is not None:
        expected = scenario.detection.expected_alert
        names = rule_names(source)
        targets = [expected] if expected and expected in names else ([] if expected else names)
        overrides = dict.fromkeys(targets, override)
    return render_rules(source, settings, for_overrides=overrides)


def check_rules_file(path: Path, promtool: Path | None = None) -> str:
    """``promtool check rules``; returns its report, raises MonitoringError with it when the rules are bad."""
    tool = promtool or find_binaries().promtool
    if tool is None:
        raise MonitoringError("promtool not found", hint=f"it comes with Prometheus: `{APT_LINE}`")
    done = subprocess.run(
        [str(tool), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    report = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise MonitoringError(f"alert rules {path} are invalid:\n{report}")
    return report


# ---- the cluster's side: what to scrape and with which credentials --------------------------------------


class ClusterLike(Protocol):
    """What the stack needs of a cluster (drills.adapters.clusters.facade.ClusterHandle has it)."""

    @property
    def name(self) -> str: ...

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def context(self) -> str: ...

    @property
    def workdir(self) -> Path | None: ...


def _write_secret(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _SECRET_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    path.chmod(_SECRET_MODE)
    return path


def _kube_file(entry: Mapping[str, Any], key: str, base: Path, out: Path) -> Path | None:
    """``key-data`` (base64) written to ``out``, or ``key`` (a path, relative to the kubeconfig) as is."""
    data = entry.get(f"{key}-data")
    if data:
        return _write_secret(out, base64.b64decode(data))
    path = entry.get(key)
    if path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else base / p
    return None


def apiserver_target(kubeconfig: Path, context: str | None, tls_dir: Path) -> ScrapeTarget:
    """Scrape the API server as the kubeconfig's user: its CA, client certificate (or token), its address."""
    try:
        cfg = yaml.safe_load(kubeconfig.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise MonitoringError(f"cannot read kubeconfig {kubeconfig}: {e}") from e
    name = context or cfg.get("current-context")
    ctx = next((c.get("context", {}) for c in cfg.get("contexts", []) if c.get("name") == name), None)
    if ctx is None:
        raise MonitoringError(f"kubeconfig {kubeconfig} has no context {name!r}")
    cluster: dict[str, Any] = next(
        (c.get("cluster", {}) for c in cfg.get("clusters", []) if c.get("name") == ctx.get("cluster")), {}
    )
    user: dict[str, Any] = next(
        (u.get("user", {}) for u in cfg.get("users", []) if u.get("name") == ctx.get("user")), {}
    )
    server = str(cluster.get("server", ""))
    if not server.startswith("https://"):
        raise MonitoringError(f"the API server of context {name!r} is not https: {server!r}")
    base = kubeconfig.parent
    token_file: Path | None = None
    if user.get("token"):
        token_file = _write_secret(tls_dir / "apiserver-token", str(user["token"]).encode())
    elif user.get("tokenFile"):
        token_file = Path(user["tokenFile"])
    tls = TlsFiles(
        ca_file=_kube_file(cluster, "certificate-authority", base, tls_dir / "ca.crt"),
        cert_file=_kube_file(user, "client-certificate", base, tls_dir / "client.crt"),
        key_file=_kube_file(user, "client-key", base, tls_dir / "client.key"),
        bearer_token_file=token_file,
        insecure_skip_verify=bool(cluster.get("insecure-skip-tls-verify")),
    )
    return ScrapeTarget(
        job="apiserver", address=server.removeprefix("https://").split("/", 1)[0], scheme="https", tls=tls
    )


def control_plane_targets(workdir: Path | None) -> list[ScrapeTarget]:
    """kube-controller-manager and kube-scheduler of an embedded (kwokctl) cluster, from its kwok.yaml.

    Both serve /metrics over https with a self-signed certificate and allow it without authorization
    (``--authorization-always-allow-paths``), so the scrape skips verification; loopback only.
    """
    if workdir is None:
        return []
    candidates = [workdir / "kwok.yaml", *sorted(workdir.glob("clusters/*/kwok.yaml"))]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError):
            return []
        options: dict[str, Any] = next(
            (
                d.get("options", {})
                for d in docs
                if isinstance(d, dict) and d.get("kind") == "KwokctlConfiguration"
            ),
            {},
        )
        found: list[ScrapeTarget] = []
        insecure = TlsFiles(insecure_skip_verify=True)
        for job, key in (
            ("kube-controller-manager", "kubeControllerManagerPort"),
            ("kube-scheduler", "kubeSchedulerPort"),
        ):
            port = options.get(key)
            if isinstance(port, int) and port > 0:
                scheme = "https" if options.get("securePort", True) else "http"
                found.append(ScrapeTarget(job=job, address=f"{LOOPBACK}:{port}", scheme=scheme, tls=insecure))
        return found
    return []


# ---- the running stack -----------------------------------------------------------------------------------


def monitoring_dir(cluster_name: str) -> Path:
    return clusters_dir() / cluster_name / "monitoring"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class StackProcess:
    component: str
    pid: int
    #: The process' creation time (psutil): a reused PID is never taken for ours.
    created_at: float | None
    port: int
    log: str


@dataclass
class MonitoringStack:
    """A started stack, as recorded in ``stack.json`` so another drills process can find and stop it."""

    cluster_name: str
    directory: str
    prometheus_port: int
    alertmanager_port: int
    webhook_port: int
    state_metrics: str  # host:port Prometheus scrapes for kube-state metrics
    started_at: str
    processes: list[StackProcess] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return Path(self.directory)

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{LOOPBACK}:{self.alertmanager_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://{LOOPBACK}:{self.webhook_port}{ALERTMANAGER_PATH}"

    @property
    def rules_path(self) -> Path:
        return self.dir / RULES_FILE

    @property
    def impact_targets_path(self) -> Path:
        return self.dir / IMPACT_TARGETS_FILE

    def set_impact_target(self, target: str | None) -> None:
        """Point Prometheus at a drill's impact exporter (``host:port``), or at nothing (None), atomically."""
        groups = [{"targets": [target], "labels": {"job": IMPACT_JOB}}] if target else []
        tmp = self.impact_targets_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups), encoding="utf-8")
        tmp.replace(self.impact_targets_path)

    @property
    def token_file(self) -> Path:
        return self.dir / "secrets" / "webhook-token"

    def webhook_token(self) -> str:
        try:
            return self.token_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise MonitoringError(
                f"cannot read the stack's webhook token {self.token_file}: {e.strerror}",
                hint="restart the stack: `drill monitoring down` then `drill monitoring up`",
            ) from e

    def monitoring_settings(self) -> MonitoringSettings:
        s = self.settings
        return MonitoringSettings(
            scrape_interval=timedelta(seconds=float(s.get("scrape_interval", 2))),
            evaluation_interval=timedelta(seconds=float(s.get("evaluation_interval", 2))),
            group_wait=timedelta(seconds=float(s.get("group_wait", 1))),
            group_interval=timedelta(seconds=float(s.get("group_interval", 2))),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> MonitoringStack:
        data = json.loads(text)
        data["processes"] = [StackProcess(**p) for p in data.get("processes", [])]
        return cls(**data)


def _alive(proc: StackProcess) -> bool:
    if processes.zombie(proc.pid) and not processes.threads_left(proc.pid):
        _reap(proc.pid)  # our own child that exited: collect it so it leaves no zombie
        return False
    return processes.alive(proc.pid, proc.created_at)


def _reap(pid: int) -> None:
    # Our own child (started by this process) that exited: collect it so it leaves no zombie.
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def load_stack(cluster_name: str) -> MonitoringStack | None:
    path = monitoring_dir(cluster_name) / STATE_FILE
    try:
        return MonitoringStack.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise MonitoringError(
            f"the monitoring state {path} is unreadable: {e}",
            hint="stop any prometheus/alertmanager drills started by hand, then delete that file",
        ) from e


def _save_stack(stack: MonitoringStack) -> None:
    path = stack.dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(stack.to_json(), encoding="utf-8")
    tmp.replace(path)


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310  (loopback http URLs we built)
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), b""
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, b""


def _http_json(url: str, timeout: float = 2.0) -> Any:
    status, body = _http_get(url, timeout)
    if status != 200:
        raise MonitoringError(f"{url} answered {status or 'nothing'}", hint="`drill monitoring status`")
    return json.loads(body)


@dataclass(frozen=True)
class StackHealth:
    component: str
    pid: int | None
    port: int | None
    alive: bool
    ready: bool


def stack_health(stack: MonitoringStack) -> list[StackHealth]:
    urls = {
        "prometheus": f"{stack.prometheus_url}/-/ready",
        "alertmanager": f"{stack.alertmanager_url}/-/ready",
        "exporter": f"http://{stack.state_metrics}/metrics",
    }
    result = []
    for proc in stack.processes:
        alive = _alive(proc)
        ready = alive and _http_get(urls[proc.component])[0] == 200
        result.append(StackHealth(proc.component, proc.pid, proc.port, alive, ready))
    return result


def monitoring_status(cluster_name: str) -> MonitoringStack | None:
    """The recorded stack of a cluster, or None when drills started none."""
    return load_stack(cluster_name)


def _progress(enabled: bool) -> Callable[[str], contextlib.AbstractContextManager[Any]]:
    if not enabled:
        return lambda _msg: contextlib.nullcontext()
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    return lambda msg: console.status(msg, spinner="dots")


def _wait_until(
    what: str, check: Callable[[], bool], *, timeout: float, log: Path | None, procs: Sequence[StackProcess]
) -> None:
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while SYSTEM_CLOCK.monotonic() < deadline:
        for p in procs:
            if not _alive(p):
                raise MonitoringError(
                    f"{p.component} exited while starting ({what})",
                    hint=f"see its log: {p.log}",
                )
        if check():
            return
        SYSTEM_CLOCK.sleep(0.1)
    raise MonitoringError(
        f"timed out after {timeout:.0f}s waiting for {what}",
        hint=f"see the logs in {log}" if log else "`drill monitoring status`",
    )


def _child_env(*, python: bool = False) -> dict[str, str]:
    """A small environment for the stack's processes: none of the caller's secrets travel along."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    if python:
        # The exporter is drills' own code: find it where this drills is, installed or not.
        source_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)
    return env


#: Popen objects of the stack processes this drills process started: kept so they are not garbage-collected
#: while running (which warns) and so their exit is collected (no zombie).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(
    component: str, argv: list[str], directory: Path, port: int, env: Mapping[str, str] | None = None
) -> StackProcess:
    log = directory / "logs" / f"{component}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
            # Its own session: the stack outlives the command that started it and a Ctrl-C in that
            # terminal; `drill cluster down` / `drill monitoring down` stop it.
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return StackProcess(component, proc.pid, processes.created_at(proc.pid), port, str(log))


def start_monitoring(
    cluster: ClusterLike,
    *,
    settings: MonitoringSettings | None = None,
    rules: Mapping[str, Any] | None = None,
    state_metrics: str | None = None,
    webhook_port: int | None = None,
    env: Mapping[str, str] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> MonitoringStack:
    """Start Prometheus, Alertmanager and (unless ``state_metrics`` names a real kube-state-metrics) the
    exporter for ``cluster``; wait until all are ready and Prometheus scrapes the state metrics.

    Idempotent: a healthy running stack is returned as is (use :func:`reload_rules` to change its rules).
    """
    env = os.environ if env is None else env
    existing = load_stack(cluster.name)
    if existing is not None:
        health = stack_health(existing)
        if health and all(h.alive and h.ready for h in health):
            return existing
        stop_monitoring(cluster.name)
    binaries = find_binaries(env)
    settings = settings or MonitoringSettings()
    directory = monitoring_dir(cluster.name)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)

    prometheus_port, alertmanager_port = free_port(), free_port()
    if webhook_port is None:
        raw = env.get(WEBHOOK_PORT_ENV, "").strip()
        webhook_port = int(raw) if raw.isdigit() else free_port()
    exporter_port = free_port() if state_metrics is None else None
    stack = MonitoringStack(
        cluster_name=cluster.name,
        directory=str(directory),
        prometheus_port=prometheus_port,
        alertmanager_port=alertmanager_port,
        webhook_port=webhook_port,
        state_metrics=state_metrics or f"{LOOPBACK}:{exporter_port}",
        started_at=SYSTEM_CLOCK.now().isoformat(),
        settings={
            "scrape_interval": settings.scrape_interval.total_seconds(),
            "evaluation_interval": settings.evaluation_interval.total_seconds(),
            "group_wait": settings.group_wait.total_seconds(),
            "group_interval": settings.group_interval.total_seconds(),
        },
    )

    # Secrets: from the environment into 0600 files Alertmanager reads (never into its config).
    token = env.get(TOKEN_ENV, "").strip() or new_token()
    _write_secret(stack.token_file, token.encode())
    pd_key_file: Path | None = None
    if settings.alertmanager_pagerduty:
        key = env.get(PAGERDUTY_ROUTING_KEY_ENV, "").strip()
        if not key:
            raise UsageError(f"Alertmanager's PagerDuty receiver needs {PAGERDUTY_ROUTING_KEY_ENV}")
        pd_key_file = _write_secret(directory / "secrets" / "pagerduty-routing-key", key.encode())
    slack_file: Path | None = None
    if settings.alertmanager_slack:
        url = env.get(SLACK_URL_ENV, "").strip()
        if not url:
            raise UsageError(f"Alertmanager's Slack receiver needs {SLACK_URL_ENV}")
        slack_file = _write_secret(directory / "secrets" / "slack-url", url.encode())

    receivers = Receivers(
        webhook_url=stack.webhook_url,
        webhook_token_file=stack.token_file,
        pagerduty_routing_key_file=pd_key_file,
        pagerduty_url=env.get(PAGERDUTY_EVENTS_URL_ENV, "").strip() or None,
        slack_api_url_file=slack_file,
        slack_channel=settings.slack_channel,
    )
    targets = [ScrapeTarget(job=STATE_METRICS_JOB, address=stack.state_metrics)]
    targets.append(apiserver_target(cluster.kubeconfig, cluster.context, directory / "secrets" / "apiserver"))
    targets.extend(control_plane_targets(cluster.workdir))
    rendered_rules = dict(rules) if rules is not None else render_rules(shipped_rules(), settings)
    _write_yaml(stack.rules_path, rendered_rules)
    _write_yaml(
        directory / "prometheus.yml",
        render_prometheus_config(
            settings,
            targets,
            alertmanager=f"{LOOPBACK}:{alertmanager_port}",
            rule_files=[stack.rules_path],
            impact_targets=stack.impact_targets_path,
        ),
    )
    stack.set_impact_target(None)  # no drill's users yet; the runner points it at its exporter
    _write_yaml(directory / "alertmanager.yml", render_alertmanager_config(settings, receivers))
    if binaries.promtool is not None:
        check_rules_file(stack.rules_path, binaries.promtool)

    show = _progress(progress)
    procs: list[StackProcess] = []
    try:
        if exporter_port is not None:
            procs.append(
                _spawn(
                    "exporter",
                    [
                        sys.executable,
                        "-m",
                        "drills.adapters.monitoring.ksm_exporter",
                        "--kubeconfig",
                        str(cluster.kubeconfig),
                        "--context",
                        cluster.context,
                        "--port",
                        str(exporter_port),
                    ],
                    directory,
                    exporter_port,
                    _child_env(python=True),
                )
            )
        procs.append(
            _spawn(
                "alertmanager",
                [
                    str(binaries.alertmanager),
                    f"--config.file={directory / 'alertmanager.yml'}",
                    f"--storage.path={directory / 'alertmanager-data'}",
                    f"--web.listen-address={LOOPBACK}:{alertmanager_port}",
                    "--cluster.listen-address=",  # no gossip: it would listen on 0.0.0.0:9094
                    "--log.level=info",
                ],
                directory,
                alertmanager_port,
                _child_env(),
            )
        )
        procs.append(
            _spawn(
                "prometheus",
                [
                    str(binaries.prometheus),
                    f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'prometheus-data'}",
                    "--storage.tsdb.retention.time=2d",
                    f"--web.listen-address={LOOPBACK}:{prometheus_port}",
                    "--web.enable-lifecycle",  # POST /-/reload re-reads the rules; loopback only
                    "--log.level=info",
                ],
                directory,
                prometheus_port,
                _child_env(),
            )
        )
        stack.processes = procs
        _save_stack(stack)
        logs = directory / "logs"
        with show("starting Prometheus and Alertmanager"):
            _wait_until(
                "Prometheus and Alertmanager to be ready",
                lambda: (
                    _http_get(f"{stack.prometheus_url}/-/ready")[0] == 200
                    and _http_get(f"{stack.alertmanager_url}/-/ready")[0] == 200
                ),
                timeout=timeout,
                log=logs,
                procs=procs,
            )
        with show("waiting for the first scrape of the cluster state"):
            _wait_until(
                "Prometheus to scrape the state metrics and find Alertmanager",
                lambda: _scraping(stack),
                timeout=timeout,
                log=logs,
                procs=procs,
            )
    except BaseException:
        _stop_processes(procs)
        raise
    return stack


def _scraping(stack: MonitoringStack) -> bool:
    try:
        targets = _http_json(f"{stack.prometheus_url}/api/v1/targets?state=active")
        managers = _http_json(f"{stack.prometheus_url}/api/v1/alertmanagers")
    except (MonitoringError, ValueError):
        return False
    active = targets.get("data", {}).get("activeTargets", [])
    ksm_up = any(
        t.get("labels", {}).get("job") == STATE_METRICS_JOB and t.get("health") == "up" for t in active
    )
    return ksm_up and bool(managers.get("data", {}).get("activeAlertmanagers"))


def _write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False, width=200), encoding="utf-8")


def reload_rules(stack: MonitoringStack, rules: Mapping[str, Any], *, timeout: float = 20.0) -> None:
    """Replace the stack's rules; wait until Prometheus evaluates exactly these alerts with these ``for:``."""
    binaries = find_binaries()
    tmp = stack.rules_path.with_suffix(".new.yaml")
    _write_yaml(tmp, rules)
    if binaries.promtool is not None:
        check_rules_file(tmp, binaries.promtool)
    tmp.replace(stack.rules_path)
    request = urllib.request.Request(f"{stack.prometheus_url}/-/reload", method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310  (loopback)
            pass
    except (urllib.error.URLError, OSError) as e:
        raise MonitoringError(
            f"Prometheus did not reload its rules: {e}", hint="`drill monitoring status`"
        ) from e
    want = {str(r["alert"]): parse_prom_duration(str(r.get("for", "0s"))) for r in alert_rules(rules)}

    def loaded() -> bool:
        try:
            data = _http_json(f"{stack.prometheus_url}/api/v1/rules?type=alert")
        except (MonitoringError, ValueError):
            return False
        have = {
            str(r.get("name")): timedelta(seconds=float(r.get("duration", 0)))
            for g in data.get("data", {}).get("groups", [])
            for r in g.get("rules", [])
        }
        return have == want

    _wait_until("Prometheus to load the new rules", loaded, timeout=timeout, log=stack.dir / "logs", procs=[])


def _stop_processes(procs: Sequence[StackProcess], timeout: float = 10.0) -> list[str]:
    stopped: list[str] = []
    for proc in sorted(
        procs, key=lambda p: COMPONENTS.index(p.component) if p.component in COMPONENTS else 0, reverse=True
    ):
        if not _alive(proc):
            _reap(proc.pid)
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        deadline = SYSTEM_CLOCK.monotonic() + timeout
        while _alive(proc) and SYSTEM_CLOCK.monotonic() < deadline:
            _reap(proc.pid)
            SYSTEM_CLOCK.sleep(0.05)
        if _alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            end = SYSTEM_CLOCK.monotonic() + 5
            while _alive(proc) and SYSTEM_CLOCK.monotonic() < end:
                _reap(proc.pid)
                SYSTEM_CLOCK.sleep(0.05)
        _reap(proc.pid)
        stopped.append(f"{proc.component} (pid {proc.pid})")
    return stopped


def stop_monitoring(cluster_name: str, *, timeout: float = 10.0) -> list[str]:
    """Stop the cluster's stack (SIGTERM, then SIGKILL after ``timeout``); returns what was stopped.

    Safe to call when nothing runs. Only processes drills recorded are signalled, and only while their PID
    still belongs to the process drills started. The stack's directory (data, logs, secrets) is removed.
    """
    stack = load_stack(cluster_name)
    if stack is None:
        return []
    stopped = _stop_processes(stack.processes, timeout)
    shutil.rmtree(stack.dir, ignore_errors=True)
    return stopped


# ---- reading what the stack knows ------------------------------------------------------------------------


def prometheus_alerts(stack: MonitoringStack) -> list[dict[str, Any]]:
    data = _http_json(f"{stack.prometheus_url}/api/v1/alerts")
    alerts: list[dict[str, Any]] = data.get("data", {}).get("alerts", [])
    return alerts


def alertmanager_alerts(stack: MonitoringStack) -> list[dict[str, Any]]:
    """Alertmanager's own view (API v2): each alert with its ``startsAt`` and ``fingerprint``."""
    alerts: list[dict[str, Any]] = _http_json(f"{stack.alertmanager_url}/api/v2/alerts")
    return alerts


def query(stack: MonitoringStack, promql: str) -> list[dict[str, Any]]:
    url = f"{stack.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    data = _http_json(url)
    result: list[dict[str, Any]] = data.get("data", {}).get("result", [])
    return result


def describe_rules(rules: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(alert, for, severity) of each rule, for `drill monitoring rules`."""
    rows = []
    for r in alert_rules(rules):
        for_ = parse_prom_duration(str(r.get("for", "0s")))
        rows.append(
            (str(r["alert"]), format_duration(for_), str((r.get("labels") or {}).get("severity", "")))
        )
    return rows
