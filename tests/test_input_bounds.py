"""Files people point drills at: read bounded, one file's failure never ends the batch, YAML read as 1.2 core.

Each test reproduces a finding of issue #13 first (a FIFO hung `drill validate`, /dev/zero read until
MemoryError, `title: !!timestamp x` aborted the whole batch, `cost: yes` was read as 1).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from drills.adapters.chaostoolkit import load_experiment
from drills.adapters.core_yaml import core_safe_load
from drills.adapters.files.scenarios import (
    MAX_BYTES,
    load_scenario,
    load_scenarios,
    parse_scenario,
    parse_yaml,
)
from drills.adapters.reading import UnreadableFile, read_bounded
from drills.adapters.store.paths import repo_root
from drills.cli import cli
from drills.errors import ChaosToolkitError, ScenarioError

SCENARIOS = repo_root() / "scenarios"
#: The shipped bad release without its rollout strategy (a bad-deploy field): tests swap the fault for others.
GOOD = (
    (SCENARIOS / "bad-deploy-rollback.yaml")
    .read_text(encoding="utf-8")
    .replace(
        "    max_unavailable: 67%  # no canary: two of three old pods go at once, one is left (docs/impact.md)\n",
        "",
    )
)

pytestmark = pytest.mark.timeout(20)  # a read that blocks fails the test instead of hanging the run


# ---- bounded reads --------------------------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # no writer: a plain open() would wait for one forever
    with pytest.raises(UnreadableFile) as e:
        read_bounded(fifo)
    assert e.value.path == str(fifo)
    assert "FIFO" in e.value.reason and "regular file" in e.value.reason


def test_dev_zero_and_a_symlink_to_it_are_refused_not_read() -> None:
    with pytest.raises(UnreadableFile, match="character device"):
        read_bounded("/dev/zero")


def test_a_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(UnreadableFile) as e:
        read_bounded(link)
    assert e.value.path == str(link) and "character device" in e.value.reason


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="is a directory"):
        read_bounded(tmp_path)


def test_the_cap_counts_bytes_read_not_what_stat_says(tmp_path: Path) -> None:
    at_cap = tmp_path / "at.yaml"
    at_cap.write_bytes(b"#" * 100)
    assert read_bounded(at_cap, limit=100) == b"#" * 100
    over = tmp_path / "over.yaml"
    over.write_bytes(b"#" * 101)
    with pytest.raises(UnreadableFile, match="too large"):
        read_bounded(over, limit=100)


def test_validate_over_a_directory_with_a_fifo_and_dev_zero_reports_each_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path), "/dev/zero"])
    lines = result.output.splitlines()
    assert (
        f"{tmp_path / 'pipe.yaml'}: is a FIFO (named pipe), not a regular file; drills reads regular files only"
        in lines
    )
    assert (
        f"{tmp_path / 'zero.yaml'}: is a character device, not a regular file; drills reads regular files only"
        in lines
    )
    assert "/dev/zero: is a character device, not a regular file; drills reads regular files only" in lines
    assert lines[-1] == "1 scenario valid, 3 problems"
    assert result.exit_code == 3


def test_a_chaostoolkit_experiment_path_is_read_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "experiment.json"
    os.mkfifo(fifo)
    with pytest.raises(ChaosToolkitError, match="FIFO"):
        load_experiment(fifo)
    scenario = GOOD.replace(
        "faults:\n  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        f"faults:\n  - kind: chaostoolkit\n    experiment: {fifo}\n",
    )
    (tmp_path / "s.yaml").write_text(scenario, encoding="utf-8")
    with pytest.raises(ScenarioError) as e:
        load_scenario(tmp_path / "s.yaml")
    (problem,) = e.value.problems
    assert problem.field == "faults[0].experiment" and "FIFO" in problem.message


# ---- per-file loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!!timestamp x", "'x' cannot be read: not a valid !!timestamp"),
        ("!!binary abc", "'abc' cannot be read: failed to decode base64 data"),
        ("!!int 1_0x", "'1_0x' cannot be read"),
        ("!!float abc", "'abc' cannot be read"),
        ("!!bool yes", "'yes' cannot be read: 'yes' is not true or false"),
        ("!!python/name:os.system x", "unsupported YAML tag !!python/name:os.system"),
        ("!!set {a, b}", "unsupported YAML tag !!set"),
    ],
)
def test_an_explicit_tag_that_cannot_be_built_is_a_problem_of_its_line(value: str, expected: str) -> None:
    text = GOOD.replace("title: Checkout crashes after the v2.1.0 release", f"title: {value}")
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, file="t.yaml", base_dir=SCENARIOS)
    (problem,) = e.value.problems  # and no second "expected text, got null" for the same value
    assert (problem.line, problem.field) == (3, "title")
    assert expected in problem.message


def test_one_broken_file_never_loses_the_others(tmp_path: Path) -> None:
    (tmp_path / "a-timestamp.yaml").write_text("id: x\ntitle: !!timestamp x\n", encoding="utf-8")
    (tmp_path / "b-deep.yaml").write_text(
        "id: y\ntitle: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8"
    )
    # Nine levels of ten aliases each: 10**9 values once expanded, a few hundred bytes written.
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    laughs = "\n".join(levels) + "\n"
    (tmp_path / "c-laughs.yaml").write_text(laughs, encoding="utf-8")
    (tmp_path / "d-good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "e-good.yaml").write_text(
        GOOD.replace("id: bad-deploy-rollback", "id: other"), encoding="utf-8"
    )
    loaded, problems = load_scenarios([tmp_path])
    assert sorted(s.id for _, s in loaded) == ["bad-deploy-rollback", "other"]
    by_file = {Path(p.file).name: p for p in problems}
    assert "not a valid !!timestamp" in str(problems)
    assert "nested too deeply" in by_file["b-deep.yaml"].message
    assert "alias bomb" in by_file["c-laughs.yaml"].message


def test_drill_list_shows_every_good_scenario_when_one_file_is_broken(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: x\ntitle: !!timestamp x\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    result = CliRunner().invoke(cli, ["list", "--dir", str(tmp_path), "--json"])
    assert "bad-deploy-rollback" in result.output, result.output


# ---- YAML 1.2 core ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("12:30:00", "12:30:00"),
        ("2026-01-01", "2026-01-01"),
        ("1_000", "1_000"),
        ("=", "="),
        ("true", True),
        ("False", False),
        ("017", 17),
        ("0o17", 15),
        ("0x1F", 31),
        ("-3", -3),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("null", None),
        ("~", None),
        ("٣", "٣"),
    ],
)
def test_scalars_resolve_as_yaml_1_2_core(text: str, value: object) -> None:
    assert core_safe_load(f"v: {text}") == {"v": value}
    assert parse_yaml(f"v: {text}", file="t.yaml").data == {"v": value}


def test_a_merge_key_still_merges() -> None:
    assert core_safe_load("a: &a {x: 1}\nb:\n  <<: *a\n  y: 2\n") == {"a": {"x": 1}, "b": {"x": 1, "y": 2}}


def test_a_file_of_more_than_the_cap_is_refused_by_name(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(big)
    assert str(e.value) == f"{big}: file is too large (more than {MAX_BYTES} bytes)"


def test_an_experiment_whose_yaml_cannot_be_built_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "exp.yaml").write_text(
        "title: !!timestamp x\ndescription: d\nmethod: []\n", encoding="utf-8"
    )
    scenario = GOOD.replace(
        "faults:\n  - kind: bad-deploy\n    image: myapp:v2.1.0\n    effect: crash\n",
        "faults:\n  - kind: chaostoolkit\n    experiment: experiments/exp.yaml\n",
    )
    (tmp_path / "s.yaml").write_text(scenario, encoding="utf-8")
    loaded, problems = load_scenarios([tmp_path])
    assert loaded == []
    (problem,) = problems
    assert problem.field == "faults[0].experiment" and "is not valid YAML" in problem.message


def test_an_unforeseen_error_in_one_file_is_that_files_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands for a loader bug: one file's unexpected exception must still leave the others' results whole.
    from drills.adapters.files import scenarios as module

    real = module.scenario_problems

    def flaky(loaded: module.Loaded[module.Scenario], base_dir: Path) -> list[object]:
        if loaded.model.id == "bad-deploy-rollback":
            raise RuntimeError("boom")
        return real(loaded, base_dir)  # type: ignore[return-value]

    monkeypatch.setattr(module, "scenario_problems", flaky)
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD.replace("id: bad-deploy-rollback", "id: other"), encoding="utf-8")
    loaded, problems = load_scenarios([tmp_path])
    assert [s.id for _, s in loaded] == ["other"]
    (problem,) = problems
    assert problem.file == str(tmp_path / "a.yaml")
    assert "RuntimeError: boom" in problem.message and "bug in drills" in problem.message


def test_values_passed_on_to_chaos_toolkit_are_json_only() -> None:
    # A !!binary or !!timestamp inside `configuration` used to load, then fail where it was written out.
    text = (SCENARIOS / "chaostoolkit-terminate-pod.yaml").read_text(encoding="utf-8")
    old = "experiment: experiments/terminate-app-pod.json"
    text = text.replace(
        old, f"{old}\n    configuration: {{a: !!binary aGVsbG8=, b: !!timestamp 2026-01-01, c: 1.5}}"
    )
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, file="t.yaml", base_dir=SCENARIOS)
    assert [p.field for p in e.value.problems] == ["faults[0].configuration.a", "faults[0].configuration.b"]
    assert all("only text, numbers" in p.message for p in e.value.problems)
