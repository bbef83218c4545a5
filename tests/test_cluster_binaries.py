"""Finding and building the embedded cluster's binaries: cache stamp, user-supplied binaries, clear errors.

The bookkeeping tests drive ``build`` with a stand-in for build.sh (a cold build takes minutes); the real
script and Go are exercised by ``test_build_sh_builds_a_component_for_real`` and by the cached binaries.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from drills.adapters.clusters import binaries as b
from drills.errors import BuildError, EnvironmentProblem, UsageError

REAL_CACHE = Path(os.environ.get("DRILLS_CACHE", Path.home() / ".cache" / "drills"))


def _exe(path: Path, body: str = "#!/bin/sh\necho fake\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    for c in b.COMPONENTS:
        monkeypatch.delenv(c.env_var, raising=False)
    monkeypatch.delenv("DRILLS_BIN_DIR", raising=False)
    monkeypatch.delenv(b.KUBECTL_ENV, raising=False)
    return tmp_path / "cache"


def test_an_empty_cache_reports_every_binary_missing_and_says_how_to_get_them(cache: Path) -> None:
    res = b.resolve()
    assert [c.name for c in res.missing] == list(b.COMPONENT_NAMES)
    with pytest.raises(EnvironmentProblem) as e:
        b.locate()
    assert "drill cluster build" in str(e.value)
    assert "DRILLS_BIN_DIR" in str(e.value)


def test_kubectl_is_the_wheels_binary_not_the_one_on_path(cache: Path) -> None:
    kubectl = b.kubectl_binary()
    assert kubectl != Path("/usr/bin/kubectl")
    out = subprocess.run([str(kubectl), "version", "--client"], capture_output=True, text=True, check=True)
    assert "v1.37." in out.stdout


def test_binaries_in_drills_bin_dir_are_used_as_they_are(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "downloaded"
    for c in b.COMPONENTS:
        # Official kwok releases call the controller kwok; some packagings kwok-controller.
        _exe(own / ("kwok-controller" if c.name == "kwok" else c.name))
    monkeypatch.setenv("DRILLS_BIN_DIR", str(own))
    found = b.locate()
    assert found.kube_apiserver == own / "kube-apiserver"
    assert found.kwok == own / "kwok-controller"
    assert b.resolve().sources["etcd"] == "DRILLS_BIN_DIR"


def test_a_per_binary_variable_wins_and_a_wrong_one_is_named(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etcd = _exe(tmp_path / "my-etcd")
    monkeypatch.setenv("DRILLS_ETCD_BINARY", str(etcd))
    assert b.resolve().paths["etcd"] == etcd
    monkeypatch.setenv("DRILLS_KUBE_APISERVER_BINARY", str(tmp_path / "nope"))
    with pytest.raises(EnvironmentProblem) as e:
        b.resolve()
    assert "DRILLS_KUBE_APISERVER_BINARY" in str(e.value)
    assert "does not exist" in str(e.value)


def test_the_drills_config_can_name_binaries_and_a_bad_entry_names_file_and_field(
    cache: Path, tmp_path: Path
) -> None:
    config = tmp_path / "state" / "config.yaml"
    config.parent.mkdir(parents=True)
    sched = _exe(tmp_path / "bin" / "sched")
    config.write_text(f"binaries:\n  kube-scheduler: {sched}\n")
    res = b.resolve()
    assert res.paths["kube-scheduler"] == sched
    assert res.sources["kube-scheduler"] == "config"
    config.write_text("binaries:\n  kube-apiservr: /x\n")
    with pytest.raises(UsageError) as e:
        b.resolve()
    assert str(config) in str(e.value)
    assert "binaries.kube-apiservr" in str(e.value)


def _fake_build(script_log: list[list[str]], *, fail: str | None = None):  # type: ignore[no-untyped-def]
    def run(cmd: list[str], log: Path, env: Mapping[str, str]) -> int:
        script_log.append(cmd)
        out_dir, name = Path(cmd[2]), cmd[3]
        assert env["DRILLS_K8S_VERSION"] == b.K8S_VERSION
        if name == fail:
            log.write_text(
                "go: downloading k8s.io/kubernetes v1.37.2\n# k8s.io/foo\nfoo.go:1: syntax error\n"
            )
            return 1
        log.write_text(f"built {name}\n")
        _exe(out_dir / name, f"#!/bin/sh\necho {name}\n")
        return 0

    return run


def test_build_stamps_what_it_built_and_skips_it_next_time(cache: Path) -> None:
    calls: list[list[str]] = []
    results = b.build(["etcd", "kwokctl"], progress=False, runner=_fake_build(calls))
    assert [r.name for r in results] == ["etcd", "kwokctl"]
    assert [c[3] for c in calls] == ["etcd", "kwokctl"]
    assert calls[0][1].endswith("fixtures/cluster/build.sh")
    stamp = b.read_manifest()["components"]
    assert stamp["etcd"]["version"] == b.ETCD_VERSION
    assert stamp["etcd"]["module"] == "go.etcd.io/etcd/server/v3"
    assert stamp["etcd"]["build_seconds"] is not None
    assert b.build_log("etcd").read_text() == "built etcd\n"
    assert set(b.build_seconds()) == {"etcd", "kwokctl"}
    # Present at the right version: nothing to do.
    assert b.build(["etcd", "kwokctl"], progress=False, runner=_fake_build(calls)) == []
    assert len(calls) == 2
    # A binary replaced behind the stamp's back is rebuilt.
    _exe(b.bin_dir() / "etcd", "#!/bin/sh\necho something else entirely\n")
    assert "etcd" in [c.name for c in b.resolve().missing]
    b.build(["etcd"], progress=False, runner=_fake_build(calls))
    assert [c[3] for c in calls][-1] == "etcd"


def test_a_failed_build_names_the_module_and_the_log(cache: Path) -> None:
    with pytest.raises(BuildError) as e:
        b.build(["kube-apiserver"], progress=False, runner=_fake_build([], fail="kube-apiserver"))
    err = e.value
    assert err.module == f"k8s.io/kubernetes@{b.K8S_VERSION}"
    assert err.log_path == str(b.build_log("kube-apiserver"))
    assert "syntax error" in str(err)  # the end of the log is in the message
    assert "kube-apiserver" not in b.read_manifest().get("components", {})


def test_missing_go_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    with pytest.raises(EnvironmentProblem) as e:
        b.go_binary()
    assert "Go is not installed" in str(e.value)
    assert "go.dev/dl" in str(e.value)
    assert "DRILLS_BIN_DIR" in str(e.value)


def test_an_old_go_is_refused_with_the_version_needed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _exe(tmp_path / "go", "#!/bin/sh\necho go1.21.5\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as e:
        b.go_binary()
    assert "go1.21.5 is too old" in str(e.value)
    assert "1.26" in str(e.value)


def test_adopt_stamps_cached_binaries_of_the_right_version_only(cache: Path, tmp_path: Path) -> None:
    _exe(b.bin_dir() / "kube-scheduler", "#!/bin/sh\necho Kubernetes v1.37.2\n")
    _exe(b.bin_dir() / "etcd", "#!/bin/sh\necho 'etcd Version: 3.5.0'\n")
    adopted = b.adopt([b.component("kube-scheduler"), b.component("etcd")])
    assert adopted == ["kube-scheduler"]
    entry = b.read_manifest()["components"]["kube-scheduler"]
    assert entry["build_seconds"] is None
    assert "adopted" in entry["how"]


@pytest.mark.skipif(
    not (REAL_CACHE / "bin" / b.K8S_VERSION / "kube-apiserver").exists(), reason="binaries not built"
)
def test_the_real_cached_binaries_are_the_versions_drills_expects() -> None:
    directory = REAL_CACHE / "bin" / b.K8S_VERSION
    for name in ("kube-apiserver", "etcd", "kwok", "metrics-server"):
        c = b.component(name)
        assert b.probe_version(c, directory / name) == c.version, name


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed")
def test_build_sh_builds_a_component_for_real(tmp_path: Path) -> None:
    """kwokctl with a warm Go cache: the real script, the real toolchain, the version in the binary."""
    script = Path(__file__).resolve().parents[1] / "fixtures" / "cluster" / "build.sh"
    proc = subprocess.run(
        ["bash", str(script), str(tmp_path), "kwokctl"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = subprocess.run([str(tmp_path / "kwokctl"), "--version"], capture_output=True, text=True, check=True)
    assert b.KWOK_VERSION in out.stdout


def test_build_sh_refuses_an_unknown_component(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "fixtures" / "cluster" / "build.sh"
    proc = subprocess.run(
        ["bash", str(script), str(tmp_path), "kubelet"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "unknown component: kubelet" in proc.stderr


def test_the_wrapper_modules_pin_their_dependencies() -> None:
    gomod = Path(__file__).resolve().parents[1] / "fixtures" / "cluster" / "gomod"
    for module, needle in (
        ("kubernetes", "k8s.io/kubernetes v1.37.2"),
        ("etcd", "go.etcd.io/etcd/server/v3 v3.6.16"),
    ):
        text = (gomod / module / "go.sum").read_text()
        assert needle in text, module
