"""The embedded drill cluster: a real Kubernetes control plane on this machine, kwok playing the kubelets.

Why: every drill needs a cluster to break, and trainees must use real kubectl against real controllers
(Deployments, rollouts and ``rollout undo``, eviction with PodDisruptionBudgets, node-lifecycle taints). kind
needs Docker and registry images; this needs neither. kwokctl (``--runtime binary``) runs etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok and metrics-server as local processes built by
:mod:`drills.adapters.clusters.binaries`; only pod and node *status* is simulated, by kwok Stages (fixtures/kwok/).

What this module guarantees:

- loopback only: every component binds 127.0.0.1, nodes carry InternalIP 127.0.0.1 and the API server
  reaches kubelets (kwok) by InternalIP only, so not even a DNS lookup leaves the machine; kwokctl runs with
  an unusable HTTP proxy, so any attempt to download something fails instead of happening;
- its own files: kwokctl's work dir is ``state_dir()/clusters/<name>/kwok`` (never ``~/.kwok``) and its
  kubeconfig ``state_dir()/clusters/<name>/kubeconfig`` (never ``~/.kube/config``), with a context named
  ``drills-<name>`` so drills' safety rails recognise it as a drill cluster;
- an audit log (fixtures/cluster/audit-policy.yaml) so the observer can attribute every change;
- Stages, Metrics, ClusterResourceUsage and ClusterLogs as API objects, so faults, ``kubectl top`` and
  ``kubectl logs`` can be driven at run time;
- a realistic but drill-sized node lifecycle: leases of 20 s, a node-monitor grace period of 20 s, and pods
  tolerating not-ready/unreachable nodes for 30 s (Kubernetes defaults: 40 s and 300 s), so a lost node is
  tainted and its pods evicted within a minute; kwok manages only nodes *not* labelled
  ``drills.io/fault=lost``, which is how a node's heartbeat is stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drills.adapters import processes
from drills.adapters.clusters.binaries import Binaries
from drills.adapters.store.paths import clusters_dir, fixtures_dir
from drills.errors import ClusterError, EnvironmentProblem
from drills.timing import SYSTEM_CLOCK

LOOPBACK = "127.0.0.1"
CONTEXT_PREFIX = "drills-"
#: Node label that stops kwok managing the node: its lease and status stop being renewed (node lost).
FAULT_LABEL = "drills.io/fault"
LOST = "lost"
NODE_LEASE_SECONDS = 20
NODE_MONITOR_PERIOD_MS = 2_000
NODE_MONITOR_GRACE_MS = 20_000
EVICTION_TOLERATION_SECONDS = 30
CRDS = ("Stage", "Metric", "ClusterResourceUsage", "ClusterLogs")
#: kwok's own default Stages (relative to its module): node readiness and heartbeat, pod lifecycle.
KWOK_DEFAULT_STAGES = (
    "kustomize/stage/node/fast",
    "kustomize/stage/node/heartbeat-with-lease",
    "kustomize/stage/pod/fast",
)
#: kwok's resource metrics (served to metrics-server) and usage taken from pod annotations.
KWOK_METRICS = (
    "kustomize/metrics/resource/metrics-resource.yaml",
    "kustomize/metrics/usage/usage-from-annotation.yaml",
)
#: kwokctl's component names, in start order; ``kwok-controller`` is kwok.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
)
#: A proxy nothing listens on: set for kwokctl so that a download attempt fails loudly instead of happening.
DEAD_PROXY = f"http://{LOOPBACK}:9"


def context_name(name: str) -> str:
    """The kubeconfig context of cluster ``name``: always ``drills-...`` (the safety allow-list's pattern)."""
    return name if name.startswith(CONTEXT_PREFIX) else CONTEXT_PREFIX + name


@dataclass(frozen=True)
class Layout:
    """Where one embedded cluster keeps its files (all under ``state_dir()/clusters/<name>/``)."""

    name: str
    root: Path

    @classmethod
    def for_name(cls, name: str) -> Layout:
        return cls(name=name, root=clusters_dir() / name)

    @property
    def kwok_workdir(self) -> Path:
        """``KWOK_WORKDIR`` for kwokctl (instead of ``~/.kwok``)."""
        return self.root / "kwok"

    @property
    def cluster_dir(self) -> Path:
        """kwokctl's directory of this cluster: kwok.yaml, pki/, logs/, pids/, etcd data."""
        return self.kwok_workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def config_file(self) -> Path:
        return self.root / "kwokctl.yaml"

    @property
    def container_logs_dir(self) -> Path:
        """CRI-format container log files that kwok serves for ``kubectl logs`` (see fixtures.py)."""
        return self.root / "container-logs"

    @property
    def pki_dir(self) -> Path:
        return self.cluster_dir / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.pki_dir / "ca.key"

    @property
    def logs_dir(self) -> Path:
        return self.cluster_dir / "logs"

    @property
    def audit_log(self) -> Path:
        return self.logs_dir / "audit.log"

    @property
    def pids_dir(self) -> Path:
        return self.cluster_dir / "pids"

    @property
    def context(self) -> str:
        return context_name(self.name)

    def exists(self) -> bool:
        return (self.cluster_dir / "kwok.yaml").is_file()


def kwokctl_configuration(binaries: Binaries, *, fixtures: Path | None = None) -> dict[str, Any]:
    """The KwokctlConfiguration of a drill cluster (local binaries, loopback, audit, CRDs, metrics)."""
    fx = fixtures or fixtures_dir()
    return {
        "kind": "KwokctlConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "options": {
            "runtime": "binary",
            "bindAddress": LOOPBACK,
            "kubeApiserverBinary": str(binaries.kube_apiserver),
            "kubeControllerManagerBinary": str(binaries.kube_controller_manager),
            "kubeSchedulerBinary": str(binaries.kube_scheduler),
            "kwokControllerBinary": str(binaries.kwok),
            "etcdBinary": str(binaries.etcd),
            "kubectlBinary": str(binaries.kubectl),
            "enableMetricsServer": True,
            "metricsServerBinary": str(binaries.metrics_server),
            # A local kustomize directory: kwokctl's default is a GitHub URL, and we download nothing.
            "metricsServerManifests": [str(fx / "cluster" / "metrics-server")],
            "kubeAuditPolicy": str(fx / "cluster" / "audit-policy.yaml"),
            "enableCRDs": list(CRDS),
            # The heartbeat factor would multiply the periods below by 5; we set them as meant.
            "heartbeatFactor": 1,
            "nodeLeaseDurationSeconds": NODE_LEASE_SECONDS,
            "kubeControllerManagerNodeMonitorPeriodMilliseconds": NODE_MONITOR_PERIOD_MS,
            "kubeControllerManagerNodeMonitorGracePeriodMilliseconds": NODE_MONITOR_GRACE_MS,
        },
        "componentsPatches": [
            {
                "name": "kwok-controller",
                "extraArgs": [
                    {"key": "manage-all-nodes", "value": "false", "override": True},
                    {"key": "manage-nodes-with-label-selector", "value": f"{FAULT_LABEL}!={LOST}"},
                ],
            },
            {
                "name": "kube-apiserver",
                "extraArgs": [
                    # Hostname first (the default) would make the API server resolve node names over DNS.
                    {"key": "kubelet-preferred-address-types", "value": "InternalIP"},
                    {
                        "key": "default-not-ready-toleration-seconds",
                        "value": str(EVICTION_TOLERATION_SECONDS),
                    },
                    {
                        "key": "default-unreachable-toleration-seconds",
                        "value": str(EVICTION_TOLERATION_SECONDS),
                    },
                ],
            },
        ],
    }


def kwokctl_env(layout: Layout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(
        {
            "KWOK_WORKDIR": str(layout.kwok_workdir),
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "http_proxy": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "NO_PROXY": f"{LOOPBACK},localhost",
            "no_proxy": f"{LOOPBACK},localhost",
        }
    )
    return env


def _kwokctl(
    layout: Layout, binaries: Binaries, args: list[str], *, timeout: float
) -> subprocess.CompletedProcess[str]:
    log = layout.root / "kwokctl.log"
    layout.root.mkdir(parents=True, exist_ok=True)
    cmd = [str(binaries.kwokctl), *args, "--name", layout.name]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=kwokctl_env(layout), check=False
        )
    except subprocess.TimeoutExpired as e:
        raise ClusterError(
            f"kwokctl {args[0]} {args[1]} did not finish within {timeout:.0f} s",
            hint=f"see {log} and the component logs in {layout.logs_dir}",
        ) from e
    except OSError as e:
        raise EnvironmentProblem(f"cannot run kwokctl ({binaries.kwokctl}): {e}") from e
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n(exit {proc.returncode})\n")
    return proc


def create(layout: Layout, binaries: Binaries, *, timeout: float = 120.0) -> None:
    """Start a new cluster: write the configuration, run kwokctl, name the context ``drills-<name>``."""
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.config_file.write_text(
        "# Generated by drills (drills/adapters/clusters/embedded.py) for `kwokctl create cluster`.\n"
        + yaml.safe_dump(kwokctl_configuration(binaries), sort_keys=False),
        encoding="utf-8",
    )
    proc = _kwokctl(
        layout,
        binaries,
        [
            "create",
            "cluster",
            "--config",
            str(layout.config_file),
            "--kubeconfig",
            str(layout.kubeconfig),
            "--wait",
            f"{int(timeout)}s",
        ],
        timeout=timeout + 30,
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"kwokctl could not create cluster {layout.name!r}: {_last_error(proc)}",
            hint=f"see {layout.root / 'kwokctl.log'} and the component logs in {layout.logs_dir}; "
            f"`drill cluster down --name {layout.name}` cleans up",
        )
    rename_context(layout)


def start(layout: Layout, binaries: Binaries, *, timeout: float = 120.0) -> None:
    """Restart the processes of an existing cluster (e.g. after a reboot); its etcd data is kept."""
    proc = _kwokctl(
        layout, binaries, ["start", "cluster", "--wait", f"{int(timeout)}s"], timeout=timeout + 30
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"kwokctl could not start cluster {layout.name!r}: {_last_error(proc)}",
            hint=f"`drill cluster down --name {layout.name}` then `drill cluster up` recreates it",
        )


def delete(layout: Layout, kwokctl: Path | None) -> None:
    """Stop every process of the cluster and remove all its files: no process, port or directory is left.

    Returns only once the processes have exited (kwokctl signals them and returns at once).
    """
    # kwokctl removes the PID files, so note the processes (and their ports) first.
    statuses = component_statuses(layout)
    pids = [s.pid for s in statuses if s.pid is not None and s.running]
    ports = [port for s in statuses if s.running for port in s.ports]
    if kwokctl is not None and layout.exists():
        cmd = [
            str(kwokctl),
            "delete",
            "cluster",
            "--name",
            layout.name,
            "--kubeconfig",
            str(layout.kubeconfig),
        ]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, env=kwokctl_env(layout), check=False
            )
    # Whatever is still running (kwokctl missing, or a half-created cluster it does not know): stop it.
    for pid in pids:
        _terminate(pid, layout)
    # The kernel closes a listening socket a moment after its process is gone; `down` promises closed ports.
    deadline = SYSTEM_CLOCK.monotonic() + 10.0
    while any(_listening(port) for port in ports) and SYSTEM_CLOCK.monotonic() < deadline:
        SYSTEM_CLOCK.sleep(0.05)
    shutil.rmtree(layout.root, ignore_errors=True)


def _ours(pid: int, layout: Layout) -> bool:
    """The process runs one of this cluster's binaries (kwokctl starts them from ``<cluster dir>/bin/``).

    Guards against signalling an unrelated process that reused a PID.
    """
    program = processes.argv0(pid)
    return program is not None and program.startswith(str(layout.cluster_dir) + os.sep)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = SYSTEM_CLOCK.monotonic() + seconds
    while SYSTEM_CLOCK.monotonic() < deadline:
        if not _alive(pid):
            return True
        SYSTEM_CLOCK.sleep(0.05)
    return False


def _terminate(pid: int, layout: Layout, grace: float = 5.0) -> None:
    """Let the process exit (kwokctl has signalled it), else SIGTERM, then SIGKILL: only if it is ours."""
    if _wait_gone(pid, grace):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _ours(pid, layout):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        if _wait_gone(pid, grace):
            return


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    return lines[-1][:500] if lines else f"exit {proc.returncode}"


def rename_context(layout: Layout) -> None:
    """kwokctl names everything ``kwok-<name>``; ours is ``drills-<name>`` and is the current context."""
    try:
        cfg = yaml.safe_load(layout.kubeconfig.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ClusterError(f"cannot read the kubeconfig kwokctl wrote ({layout.kubeconfig}): {e}") from e
    old = f"kwok-{layout.name}"
    new = layout.context
    for section in ("clusters", "users", "contexts"):
        for entry in cfg.get(section) or []:
            if entry.get("name") == old:
                entry["name"] = new
    for entry in cfg.get("contexts") or []:
        ctx = entry.get("context") or {}
        if ctx.get("cluster") == old:
            ctx["cluster"] = new
        if ctx.get("user") == old:
            ctx["user"] = new
    cfg["current-context"] = new
    _write_private(layout.kubeconfig, yaml.safe_dump(cfg, sort_keys=False))


def _write_private(path: Path, text: str) -> None:
    # The kubeconfig holds the admin key: owner-only, like ~/.kube/config.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    tmp.replace(path)


def server_url(layout: Layout) -> str:
    """The API server's URL from the cluster's kubeconfig (``https://127.0.0.1:<port>``)."""
    try:
        cfg = yaml.safe_load(layout.kubeconfig.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ClusterError(
            f"cannot read {layout.kubeconfig}: {e}", hint="`drill cluster up` recreates it"
        ) from e
    for entry in cfg.get("clusters") or []:
        if entry.get("name") == layout.context:
            return str((entry.get("cluster") or {}).get("server", ""))
    raise ClusterError(
        f"{layout.kubeconfig} has no cluster {layout.context!r}", hint="`drill cluster up` recreates it"
    )


# ---- status ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentStatus:
    """One process of the cluster: its PID, the ports it should listen on, and whether it does."""

    name: str
    pid: int | None
    ports: tuple[int, ...] = ()
    running: bool = False
    listening: tuple[int, ...] = ()
    log: Path | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.running and set(self.ports) <= set(self.listening)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "ports": list(self.ports),
            "running": self.running,
            "listening": list(self.listening),
            "healthy": self.healthy,
            "log": str(self.log) if self.log else None,
            "detail": self.detail,
        }


def _alive(pid: int) -> bool:
    return processes.alive(pid)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((LOOPBACK, port)) == 0


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _components_config(layout: Layout) -> list[dict[str, Any]]:
    path = layout.cluster_dir / "kwok.yaml"
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "KwokctlConfiguration":
            comps = doc.get("components") or []
            return [c for c in comps if isinstance(c, dict)]
    return []


def component_statuses(layout: Layout) -> list[ComponentStatus]:
    """Each component kwokctl started, from its saved configuration and PID files."""
    result: list[ComponentStatus] = []
    seen: set[str] = set()
    for comp in _components_config(layout):
        name = str(comp.get("name", ""))
        seen.add(name)
        ports = tuple(
            int(p["port"]) for p in comp.get("ports") or [] if isinstance(p, dict) and p.get("port")
        )
        pid = _read_pid(layout.pids_dir / f"{name}.pid")
        running = pid is not None and _alive(pid)
        listening = tuple(p for p in ports if running and _listening(p))
        result.append(
            ComponentStatus(
                name=name,
                pid=pid,
                ports=ports,
                running=running,
                listening=listening,
                log=layout.logs_dir / f"{name}.log",
                detail="" if running else ("no PID file" if pid is None else f"process {pid} is not running"),
            )
        )
    # PID files of components missing from the configuration (a half-created cluster) still count.
    if layout.pids_dir.is_dir():
        for pid_file in sorted(layout.pids_dir.glob("*.pid")):
            if pid_file.stem not in seen:
                pid = _read_pid(pid_file)
                result.append(
                    ComponentStatus(name=pid_file.stem, pid=pid, running=pid is not None and _alive(pid))
                )
    return result


def component_log(layout: Layout, component: str) -> Path:
    """The log file of one component (``audit`` is the API server's audit log)."""
    if component == "audit":
        return layout.audit_log
    if component == "kwok":
        component = "kwok-controller"
    if component == "kwokctl":
        return layout.root / "kwokctl.log"
    return layout.logs_dir / f"{component}.log"


__all__ = [
    "COMPONENTS",
    "CRDS",
    "EVICTION_TOLERATION_SECONDS",
    "FAULT_LABEL",
    "KWOK_DEFAULT_STAGES",
    "KWOK_METRICS",
    "LOOPBACK",
    "LOST",
    "ComponentStatus",
    "Layout",
    "component_log",
    "component_statuses",
    "context_name",
    "create",
    "delete",
    "kwokctl_configuration",
    "kwokctl_env",
    "rename_context",
    "server_url",
    "start",
]
