"""The pytest plugin as a team would use it: a separate pytest run whose tests are drills.

The inner runs are real ``pytest`` subprocesses in a scratch directory, with the plugin loaded from its
``pytest11`` entry point (as in any project that installs drills). The cluster test points the inner run
at this session's embedded cluster with ``--drills-cluster``, so it is reused and left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from drills.adapters.clusters.facade import ClusterHandle


def inner_pytest(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_plugin_registers_its_options_and_marker(tmp_path: Path) -> None:
    help_text = inner_pytest(tmp_path, "--help").stdout
    for option in ("--drills-cluster", "--drills-backend", "--drills-keep-cluster", "--drills-junit-dir"):
        assert option in help_text
    markers = inner_pytest(tmp_path, "--markers").stdout
    assert "@pytest.mark.drill(scenario, **options)" in markers


def test_drill_scorecard_needs_the_marker(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "@pytest.fixture\n"
        "def drill_cluster_for_drills():\n"
        "    return None\n"
        "def test_no_marker(drill_scorecard):\n"
        "    pass\n",
        encoding="utf-8",
    )
    out = inner_pytest(tmp_path, "-q")
    assert out.returncode != 0
    assert "@pytest.mark.drill" in out.stdout + out.stderr


@pytest.mark.cluster
def test_drills_as_tests_with_junit_properties(tmp_path: Path, world: ClusterHandle) -> None:
    watcher = tmp_path / "watcher.yaml"
    watcher.write_text("name: watcher-bot\nsteps:\n  - {step: ack, offset: 1s}\n", encoding="utf-8")
    (tmp_path / "test_monthly_chaos.py").write_text(
        textwrap.dedent(
            f"""
            import pytest
            from pathlib import Path

            def test_losing_a_pod_self_heals(run_drill):
                card = run_drill("pod-kill-self-healing", responder=Path({str(watcher)!r}), mode="chaos-test")
                assert card.outcome == "self_healed"
                assert card.clocks.mitigated_by == "system"

            @pytest.mark.drill("bad-deploy-rollback", responder="bot:zero", seed=3)
            def test_rollback_drill(drill_scorecard):
                assert drill_scorecard.outcome == "resolved"
                assert drill_scorecard.clocks.acknowledged is not None
            """
        ),
        encoding="utf-8",
    )
    junit = tmp_path / "junit.xml"
    per_drill = tmp_path / "drill-junit"
    env = {"DRILLS_STATE": str(tmp_path / "state"), "DRILLS_REPORTS": str(tmp_path / "reports")}
    out = inner_pytest(
        tmp_path,
        "-q",
        f"--drills-cluster={world.name}",
        f"--junitxml={junit}",
        f"--drills-junit-dir={per_drill}",
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout

    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"test_losing_a_pod_self_heals", "test_rollback_drill"}
    for case in cases.values():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome = next(v for k, v in props.items() if k.endswith(".outcome"))
        score = next(v for k, v in props.items() if k.endswith(".score"))
        report = next(v for k, v in props.items() if k.endswith(".report"))
        assert outcome in ("self_healed", "resolved")
        assert 0 <= float(score) <= 100
        assert Path(report).exists()
    files = sorted(per_drill.glob("drill-*.xml"))
    assert len(files) == 2
    suite = ET.parse(files[0]).getroot()
    assert any(c.get("name") == "mttd" for c in suite.iter("testcase"))  # one case per check
    # the session's cluster was reused, not torn down
    from drills.adapters.clusters import facade as clusters

    assert clusters.get(world.name).server == world.server
