"""Revert operations as a discriminated union: every kind the injectors write round-trips through the
ledger, ledgers in the old JSON form still load, and a broken operation is a clear error naming the file,
the line, the operation and the field, never a KeyError halfway through an undo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drills.adapters.faults.ledger import Ledger, read_ledger
from drills.adapters.faults.revert import apply_ops, restore, restore_op
from drills.errors import JournalError, RevertError
from drills.model.revert import (
    OP_NAMES,
    ChaosToolkitRollbacks,
    Delete,
    Nothing,
    PodAnnotations,
    Recreate,
    Restore,
    RestoreNamespace,
    dump_ops,
    op_problems,
    parse_ops,
)

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "app", "namespace": "production", "resourceVersion": "7", "uid": "u-1"},
    "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "app:v2.0.9"}]}}},
}

#: One operation of every kind, as the injectors of this drills write them (and ledgers have held).
OLD_LEDGER_OPS: list[dict[str, Any]] = [
    {"op": "restore", "kind": "Deployment", "namespace": "production", "name": "app",
     "values": [{"path": ["spec", "replicas"], "present": True, "value": 3},
                {"path": ["metadata", "annotations", "x"], "present": False, "value": None}],
     "if_missing": "skip"},
    {"op": "restore", "kind": "Secret", "namespace": "production", "name": "db", "if_missing": "recreate",
     "values": [{"path": ["data", "password"], "present": True, "value": "c2VjcmV0"}],
     "object": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "production"}}},
    {"op": "recreate", "object": {"kind": "ConfigMap", "metadata": {"name": "cfg"}}, "paths": [["data"], ["type"]]},
    {"op": "namespace", "object": {"kind": "Namespace", "metadata": {"name": "production"}},
     "objects": [{"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "production"}}]},
    {"op": "chaostoolkit-rollbacks", "experiment": "/s/exp.json", "title": "replicas lost",
     "configuration": {"ns": "production"}, "kubeconfig": "/k", "context": None, "rollbacks": 1},
    {"op": "pod-annotations", "namespace": "production", "selector": "app=app",
     "annotations": {"drills.dev/usage-cpu": "50m", "drills.dev/fault": None}},
    {"op": "delete", "kind": "PodDisruptionBudget", "namespace": "production", "name": "drills-guard"},
    {"op": "none", "why": "3 killed pods are replaced by their controller"},
]  # fmt: skip

TYPES = [Restore, Restore, Recreate, RestoreNamespace, ChaosToolkitRollbacks, PodAnnotations, Delete, Nothing]


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def planned_line(ops: Any, entry: str = "e1") -> str:
    return json.dumps(
        {"v": 1, "record": "planned", "entry": entry, "at": "2026-01-06T09:00:00+00:00", "drill_id": "d1",
         "fault_kind": "bad-deploy", "target": "Deployment/production/app", "kubeconfig": "/k",
         "context": "drills", "ops": ops}
    )  # fmt: skip


def test_every_kind_the_code_writes_has_a_model() -> None:
    ops = parse_ops(OLD_LEDGER_OPS)
    assert [type(op) for op in ops] == TYPES
    assert {op.op for op in ops} == set(OP_NAMES)


def test_the_json_form_is_the_one_ledgers_have_always_held() -> None:
    dumped = dump_ops(parse_ops(OLD_LEDGER_OPS))
    # the same keys (fields that are absent or null are left out) and the same values
    assert [set(op) for op in dumped] == [
        {k for k, v in op.items() if v is not None} for op in OLD_LEDGER_OPS
    ]
    assert parse_ops(json.loads(json.dumps(dumped))) == parse_ops(OLD_LEDGER_OPS)
    assert dumped[5]["annotations"] == {"drills.dev/usage-cpu": "50m", "drills.dev/fault": None}


def test_an_old_ledger_file_loads_typed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(planned_line(OLD_LEDGER_OPS) + "\n")
    (entry,) = read_ledger(path).pending()
    assert entry.invalid is None
    assert [type(op) for op in entry.ops] == TYPES
    restore_ = entry.ops[0]
    assert isinstance(restore_, Restore) and restore_.values[0].path == ["spec", "replicas"]
    annotations = entry.ops[5]
    assert isinstance(annotations, PodAnnotations) and annotations.annotations["drills.dev/fault"] is None


def test_recorded_operations_round_trip_through_the_ledger() -> None:
    led = Ledger.for_drill("d2")
    typed = parse_ops(OLD_LEDGER_OPS)
    led.plan(fault_kind="bad-deploy", target="t", kubeconfig="/k", context=None, ops=typed)
    led.plan(fault_kind="bad-deploy", target="t", kubeconfig="/k", context=None, ops=OLD_LEDGER_OPS)
    first, second = led.pending()
    assert first.ops == typed and second.ops == typed


def test_a_corrupted_operation_names_the_file_line_operation_and_field(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    broken = [dict(OLD_LEDGER_OPS[7]), {k: v for k, v in OLD_LEDGER_OPS[6].items() if k != "name"}]
    path.write_text(planned_line([OLD_LEDGER_OPS[7]], "ok") + "\n" + planned_line(broken, "bad") + "\n")
    good, bad = read_ledger(path).pending()
    assert good.invalid is None
    assert bad.pending and bad.ops == []
    assert bad.invalid == f"{path}:2: ops[1].name: Field required"


def test_an_operation_without_op_or_of_an_unknown_kind_says_which(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as e:
        parse_ops([{"why": "no op"}, {"op": "teleport"}])
    lines = op_problems(e.value)
    assert lines[0].startswith("ops[0]: no 'op' (one of: restore, recreate, ")
    assert lines[1].startswith("ops[1]: unknown revert operation 'teleport' (known: restore, ")


def test_ops_that_are_not_a_list_are_invalid_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(planned_line({"op": "none"}) + "\n")
    (entry,) = read_ledger(path).pending()
    assert entry.invalid == f"{path}:1: 'ops' is not a list of revert operations"


def test_the_ledger_refuses_to_record_an_undo_it_could_not_play() -> None:
    led = Ledger.for_drill("d3")
    with pytest.raises(JournalError, match=r"ops\[0\]\.values: Field required"):
        led.plan(fault_kind="x", target="t", kubeconfig="/k", context=None,
                 ops=[{"op": "restore", "kind": "Deployment", "name": "app"}])  # fmt: skip
    assert not led.path.exists()


def test_an_unexpected_field_is_refused_so_a_typo_never_drops_part_of_an_undo() -> None:
    with pytest.raises(ValidationError, match="annotation"):
        parse_ops([{"op": "pod-annotations", "namespace": "n", "selector": "s", "annotation": {}}])


def test_restore_records_the_baseline_values_at_the_paths() -> None:
    op = restore(DEPLOYMENT, [["spec", "replicas"], ["metadata", "annotations", "x"]])
    assert op.kind == "Deployment" and op.namespace == "production" and op.name == "app"
    assert [(v.path, v.present, v.value) for v in op.values] == [
        (["spec", "replicas"], True, 3),
        (["metadata", "annotations", "x"], False, None),
    ]
    assert op.object is None
    again = restore(DEPLOYMENT, [["spec", "replicas"]], if_missing="recreate")
    assert again.object is not None and "resourceVersion" not in again.object["metadata"]
    assert parse_ops([restore_op(DEPLOYMENT, [["spec", "replicas"]])]) == [
        restore(DEPLOYMENT, [["spec", "replicas"]])
    ]


def test_apply_ops_plays_in_reverse_and_validates_before_playing_anything() -> None:
    notes = apply_ops(None, [Nothing(why="first"), {"op": "none", "why": "second"}])  # type: ignore[arg-type]
    assert notes == ["second", "first"]
    with pytest.raises(RevertError, match=r"ops\[1\]: unknown revert operation 'warp'") as e:
        apply_ops(None, [{"op": "none"}, {"op": "warp"}])  # type: ignore[arg-type]
    assert "nothing was reverted" in (e.value.hint or "")
