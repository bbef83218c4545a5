"""The kind backend: a drill cluster in Docker containers, for people who have Docker and want real kubelets.

Why keep it: kwok simulates pod and node status; on kind the fixture app (fixtures/app/) really runs, so
faults have their real effect (the process exits, /readyz fails). It needs a Docker engine and kind's node
image, which our CI machines do not have, so it is deliberately thin: each step is one command line, built
by pure functions (unit-tested) and run by :func:`create`/:func:`delete`.

Layout: ``kind create cluster`` from fixtures/kind/cluster.yaml (one control plane, three workers in two
zones), the fixture app built once and loaded into the nodes under every tag the fixtures use (the
published releases, and db-proxy), its kubeconfig in ``state_dir()/clusters/<name>/kubeconfig`` with the
context renamed ``drills-<name>`` (never ``~/.kube/config``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from drills.adapters.clusters.embedded import context_name
from drills.adapters.store.paths import clusters_dir, fixtures_dir
from drills.errors import ClusterError, EnvironmentProblem

#: Every image tag the fixtures and fault scenarios pull, all built from fixtures/app/.
FIXTURE_IMAGES = ("myapp:v1.9.0", "myapp:v2.0.0", "myapp:v2.1.0", "db-proxy:v1.4.2")


@dataclass(frozen=True)
class KindCommands:
    """The command lines of a kind drill cluster, in the order they run."""

    create: tuple[str, ...]
    build_image: tuple[str, ...]
    load_images: tuple[str, ...]
    delete: tuple[str, ...]

    def up_sequence(self) -> list[tuple[str, ...]]:
        return [self.create, self.build_image, self.load_images]


def kubeconfig_path(name: str) -> Path:
    return clusters_dir() / name / "kubeconfig"


def commands(
    name: str,
    *,
    kind: str = "kind",
    docker: str = "docker",
    fixtures: Path | None = None,
    kubeconfig: Path | None = None,
    wait: str = "120s",
) -> KindCommands:
    fx = fixtures or fixtures_dir()
    kc = str(kubeconfig or kubeconfig_path(name))
    tags: list[str] = []
    for image in FIXTURE_IMAGES:
        tags += ["-t", image]
    return KindCommands(
        create=(
            kind,
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            str(fx / "kind" / "cluster.yaml"),
            "--kubeconfig",
            kc,
            "--wait",
            wait,
        ),
        build_image=(docker, "build", *tags, str(fx / "app")),
        load_images=(kind, "load", "docker-image", "--name", name, *FIXTURE_IMAGES),
        delete=(kind, "delete", "cluster", "--name", name, "--kubeconfig", kc),
    )


def tools() -> tuple[str, str]:
    """Paths of kind and docker, or EnvironmentProblem saying what to install."""
    kind = shutil.which("kind")
    docker = shutil.which("docker")
    missing = [n for n, p in (("kind", kind), ("docker", docker)) if p is None]
    if missing or kind is None or docker is None:
        raise EnvironmentProblem(
            f"the kind backend needs {' and '.join(missing)}, which is not installed",
            hint="install Docker and kind (https://kind.sigs.k8s.io/), or use the embedded backend: "
            "`drill cluster up` (the default) needs neither",
        )
    return kind, docker


def _run(cmd: Sequence[str], timeout: float) -> None:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise ClusterError(f"`{' '.join(cmd[:4])}` could not run: {e}") from e
    if proc.returncode != 0:
        raise ClusterError(
            f"`{' '.join(cmd[:4])}` failed: {(proc.stderr or proc.stdout).strip()[-800:]}",
            hint="`docker info` must work without sudo; `kind delete cluster --name ...` cleans up",
        )


def rename_kind_context(kubeconfig: Path, name: str) -> str:
    """kind calls its context ``kind-<name>``; ours is ``drills-<name>`` (the safety allow-list's pattern)."""
    cfg = yaml.safe_load(kubeconfig.read_text(encoding="utf-8")) or {}
    old, new = f"kind-{name}", context_name(name)
    for entry in cfg.get("contexts") or []:
        if entry.get("name") == old:
            entry["name"] = new
    if cfg.get("current-context") == old:
        cfg["current-context"] = new
    kubeconfig.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    kubeconfig.chmod(0o600)
    return new


def create(name: str) -> Path:
    """Create the cluster, build and load the fixture app; the kubeconfig path."""
    kind, docker = tools()
    cmds = commands(name, kind=kind, docker=docker)
    kubeconfig_path(name).parent.mkdir(parents=True, exist_ok=True)
    _run(cmds.create, timeout=600)
    _run(cmds.build_image, timeout=900)
    _run(cmds.load_images, timeout=600)
    rename_kind_context(kubeconfig_path(name), name)
    return kubeconfig_path(name)


def delete(name: str) -> None:
    kind, docker = tools()
    _run(commands(name, kind=kind, docker=docker).delete, timeout=300)


__all__ = [
    "FIXTURE_IMAGES",
    "KindCommands",
    "commands",
    "create",
    "delete",
    "kubeconfig_path",
    "rename_kind_context",
    "tools",
]
