"""The embedded drill cluster itself, for real: loopback only, its own files, status, audit log, down.

Uses the session's ``drills-test`` cluster, and one short-lived cluster of its own for ``down``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import CLUSTER_NAME, Kubectl

from drills.adapters.clusters import facade as clusters
from drills.adapters.clusters.facade import ClusterHandle
from drills.errors import ClusterError

pytestmark = pytest.mark.cluster


def _listeners() -> dict[int, set[str]]:
    """PID -> local addresses it listens on (TCP), from `ss`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found: dict[int, set[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        local = parts[3]
        for pid in re.findall(r"pid=(\d+)", line):
            found.setdefault(int(pid), set()).add(local)
    return found


def test_up_again_returns_the_same_cluster_at_once(drill_cluster: ClusterHandle) -> None:
    start = time.monotonic()
    again = clusters.up(CLUSTER_NAME, progress=False)
    assert time.monotonic() - start < 5
    assert again == drill_cluster
    assert clusters.get(CLUSTER_NAME) == drill_cluster


def test_the_cluster_keeps_to_its_own_files(drill_cluster: ClusterHandle) -> None:
    root = Path(os.environ["DRILLS_CLUSTERS"]) / CLUSTER_NAME
    assert drill_cluster.kubeconfig == root / "kubeconfig"
    assert drill_cluster.context == CLUSTER_NAME
    assert drill_cluster.server.startswith("https://127.0.0.1:")
    assert drill_cluster.workdir is not None and drill_cluster.workdir.is_relative_to(root)
    assert (drill_cluster.workdir / "kwok.yaml").is_file()
    for path in (drill_cluster.ca_cert, drill_cluster.ca_key, drill_cluster.audit_log):
        assert path is not None and path.is_file() and path.is_relative_to(root)
    assert drill_cluster.kubeconfig.stat().st_mode & 0o077 == 0
    user_kubeconfig = Path.home() / ".kube" / "config"
    if user_kubeconfig.exists():
        assert CLUSTER_NAME not in user_kubeconfig.read_text()
    kwok_home = Path.home() / ".kwok" / "clusters" / CLUSTER_NAME
    assert not kwok_home.exists()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_every_component_runs_and_listens_on_loopback_only(drill_cluster: ClusterHandle) -> None:
    st = clusters.status(CLUSTER_NAME)
    assert st.up and st.healthy and st.fixtures_ready, st.to_dict()
    names = {c.name for c in st.components}
    assert names == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
        "metrics-server",
    }
    listeners = _listeners()
    for c in st.components:
        assert c.pid is not None and c.ports
        addresses = listeners.get(c.pid, set())
        assert addresses, f"{c.name} listens on nothing"
        for address in addresses:
            assert address.startswith("127.0.0.1:"), f"{c.name} listens on {address}"
    # And every connection they have open (TCP or UDP, e.g. DNS) is between loopback addresses.
    pids = {c.pid for c in st.components}
    for flag in ("-tnpH", "-unpH"):
        for line in subprocess.run(
            ["ss", flag], capture_output=True, text=True, check=True
        ).stdout.splitlines():
            owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
            if owners & pids:
                local, peer = line.split()[3:5]
                assert local.startswith("127.0.0.1:") and peer.startswith("127.0.0.1:"), line


def test_status_json_from_the_cli(drill_cluster: ClusterHandle) -> None:
    from click.testing import CliRunner

    from drills.cli import cli

    result = CliRunner().invoke(cli, ["cluster", "status", "--name", CLUSTER_NAME, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["healthy"] is True and data["fixtures_ready"] is True
    assert {c["name"] for c in data["components"]} >= {"kube-apiserver", "etcd"}
    assert all(c["pid"] for c in data["components"])
    kc = CliRunner().invoke(cli, ["cluster", "kubeconfig", "--name", CLUSTER_NAME, "--export"])
    assert kc.output.strip() == f"export KUBECONFIG={drill_cluster.kubeconfig}"
    log = CliRunner().invoke(
        cli, ["cluster", "logs", "kube-apiserver", "--name", CLUSTER_NAME, "--tail", "5"]
    )
    assert log.exit_code == 0 and len(log.output.splitlines()) == 5


def test_get_of_a_cluster_that_is_not_up_says_how_to_start_it() -> None:
    with pytest.raises(ClusterError) as e:
        clusters.get("drills-never-started")
    assert "drill cluster up --name drills-never-started" in str(e.value)


def test_the_audit_log_attributes_a_person_and_a_controller(
    drill_cluster: ClusterHandle, kubectl: Kubectl
) -> None:
    marker = uuid.uuid4().hex[:12]
    kubectl(
        "annotate", "configmap", "app-config", "-n", "production", f"drills.io/probe={marker}", "--overwrite"
    )
    kubectl("logs", "-n", "production", "deployment/app", "--tail=1")
    try:
        assert drill_cluster.audit_log is not None
        deadline = time.monotonic() + 10
        mine: list[dict[str, object]] = []
        reads: list[dict[str, object]] = []
        while time.monotonic() < deadline and not (mine and reads):
            events = [json.loads(line) for line in drill_cluster.audit_log.read_text().splitlines()]
            mine = [
                e
                for e in events
                if e["verb"] == "patch" and e.get("objectRef", {}).get("name") == "app-config"  # type: ignore[union-attr]
            ]
            reads = [e for e in events if e.get("objectRef", {}).get("subresource") == "log"]  # type: ignore[union-attr]
            time.sleep(0.5)
        assert mine and str(mine[-1]["userAgent"]).startswith("kubectl/")
        assert reads, "kubectl logs (an evidence read) is in the audit log"
        agents = {str(e.get("userAgent", "")).split("/")[0] for e in events}
        assert "kube-controller-manager" in agents  # the ReplicaSets and pods it created at up
        resources = {e.get("objectRef", {}).get("resource") for e in events}  # type: ignore[union-attr]
        assert "leases" not in resources and "events" not in resources
        assert not any(e["verb"] in ("list", "watch") for e in events)
        assert all(e["level"] == "Metadata" for e in events)  # no bodies, so no Secret values
    finally:
        kubectl("annotate", "configmap", "app-config", "-n", "production", "drills.io/probe-")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _port_holders(ports: list[int]) -> str:
    """Who holds these ports (for the failure message): `ss` names the process."""
    try:
        out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"(ss failed: {e})"
    return "\n".join(line for line in out.splitlines() if any(f":{p} " in line for p in ports))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_down_leaves_no_process_port_or_directory(drill_cluster: ClusterHandle) -> None:
    name = "drills-down-test"
    try:
        handle = clusters.up(name, progress=False)
        st = clusters.status(name)
        assert st.healthy
        pids = [c.pid for c in st.components if c.pid]
        ports = [p for c in st.components for p in c.ports]
        root = Path(os.environ["DRILLS_CLUSTERS"]) / name
        assert len(pids) == 6 and ports and root.is_dir()
        assert handle.context == name
    finally:
        assert clusters.down(name)
    # down returns only once every process has exited and every port is closed.
    assert not [p for p in pids if _pid_alive(p)]
    still_open = [p for p in ports if _port_open(p)]
    assert not still_open, _port_holders(still_open)
    assert not root.exists()
    assert clusters.status(name).backend is None
    assert clusters.down(name) is False  # nothing left to take down
    # The session's cluster was not touched.
    assert clusters.status(CLUSTER_NAME).healthy


def test_the_context_backend_uses_an_allow_listed_context_and_never_deletes_it(
    drill_cluster: ClusterHandle, tmp_path: Path
) -> None:
    from drills.errors import SafetyError

    # A context that is not allow-listed is refused before anything is touched.
    foreign = tmp_path / "kubeconfig"
    foreign.write_text(drill_cluster.kubeconfig.read_text().replace(CLUSTER_NAME, "prod-eu"))
    with pytest.raises(SafetyError):
        clusters.up("ctx-refused", "context", context="prod-eu", kubeconfig=foreign, progress=False)
    assert clusters.status("ctx-refused").backend is None
    # drills' own contexts are allowed: the existing cluster is used, its fixtures verified Ready.
    handle = clusters.up(
        "ctx-test", "context", context=CLUSTER_NAME, kubeconfig=drill_cluster.kubeconfig, progress=False
    )
    try:
        assert handle.backend == "context" and handle.server == drill_cluster.server
        assert handle.workdir is None and handle.audit_log is None
        assert clusters.status("ctx-test").fixtures_ready
    finally:
        assert clusters.down("ctx-test")
    assert clusters.status(CLUSTER_NAME).healthy  # forgetting the context left the cluster alone
