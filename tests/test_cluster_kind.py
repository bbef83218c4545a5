"""The kind backend's command lines (it needs Docker, which CI machines lack, so it is kept thin)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drills.adapters.clusters import kind
from drills.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parents[1]


def test_up_creates_from_the_fixture_config_builds_the_app_and_loads_every_tag(tmp_path: Path) -> None:
    cmds = kind.commands(
        "drills",
        kind="/usr/bin/kind",
        docker="/usr/bin/docker",
        fixtures=ROOT / "fixtures",
        kubeconfig=tmp_path / "kc",
    )
    assert cmds.create == (
        "/usr/bin/kind", "create", "cluster", "--name", "drills",
        "--config", str(ROOT / "fixtures" / "kind" / "cluster.yaml"),
        "--kubeconfig", str(tmp_path / "kc"), "--wait", "120s",
    )  # fmt: skip
    assert cmds.build_image[:2] == ("/usr/bin/docker", "build")
    assert cmds.build_image[-1] == str(ROOT / "fixtures" / "app")
    tags = [cmds.build_image[i + 1] for i, a in enumerate(cmds.build_image) if a == "-t"]
    assert set(tags) == set(kind.FIXTURE_IMAGES)
    assert cmds.load_images == (
        "/usr/bin/kind",
        "load",
        "docker-image",
        "--name",
        "drills",
        *kind.FIXTURE_IMAGES,
    )
    assert cmds.up_sequence() == [cmds.create, cmds.build_image, cmds.load_images]
    # Never the user's ~/.kube/config.
    assert cmds.delete == (
        "/usr/bin/kind",
        "delete",
        "cluster",
        "--name",
        "drills",
        "--kubeconfig",
        str(tmp_path / "kc"),
    )


def test_every_image_the_fixtures_use_is_built_for_kind() -> None:
    images = set()
    for path in (ROOT / "fixtures" / "manifests").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Deployment":
                images |= {c["image"] for c in doc["spec"]["template"]["spec"]["containers"]}
    assert images <= set(kind.FIXTURE_IMAGES)


def test_the_kind_cluster_has_one_control_plane_and_three_workers_on_loopback() -> None:
    cfg = yaml.safe_load((ROOT / "fixtures" / "kind" / "cluster.yaml").read_text())
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") == 3
    assert cfg["networking"]["apiServerAddress"] == "127.0.0.1"
    zones = {
        n.get("labels", {}).get("topology.kubernetes.io/zone") for n in cfg["nodes"] if n["role"] == "worker"
    }
    assert zones == {"zone-a", "zone-b"}


def test_without_docker_or_kind_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as e:
        kind.tools()
    assert "kind and docker" in str(e.value)
    assert "embedded" in str(e.value)


def test_the_kind_context_is_renamed_for_the_safety_allow_list(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        yaml.safe_dump(
            {
                "contexts": [
                    {"name": "kind-drills", "context": {"cluster": "kind-drills", "user": "kind-drills"}}
                ],
                "current-context": "kind-drills",
            }
        )
    )
    assert kind.rename_kind_context(kc, "drills") == "drills-drills"
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["current-context"] == "drills-drills"
    assert cfg["contexts"][0]["name"] == "drills-drills"
