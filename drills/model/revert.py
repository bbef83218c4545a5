"""Revert operations: a fault's undo as data, one pydantic model per kind, told apart by ``op``.

An injector describes its undo before it injects; the operations go to the revert ledger (fsynced JSON) and
are played back by the live revert, on a signal, or by ``drill recover`` in another process after a crash.
Typed here, a ledger line that lost a field or names an operation this drills does not know is a validation
error naming the operation and the field, instead of a ``KeyError`` halfway through an undo. The JSON form is
the one ledgers have always held (the same keys), so old ledgers still load.

Every operation restores a *recorded baseline* and is idempotent (see ``drills.adapters.faults.revert``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

#: A path into a Kubernetes object (``["spec", "template"]``).
ObjectPath = list[str]


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaselineValue(_Op):
    """One field's baseline: whether it was there, and its value."""

    path: ObjectPath
    present: bool
    value: Any = None


class Restore(_Op):
    """Put fields of one object back to their baseline (a PUT with the resourceVersion read)."""

    op: Literal["restore"] = "restore"
    kind: str
    namespace: str | None = None
    name: str
    values: list[BaselineValue]
    #: When the object is gone: leave it (``skip``) or create it from ``object`` (``recreate``).
    if_missing: Literal["skip", "recreate"] = "skip"
    object: dict[str, Any] | None = None


class Recreate(_Op):
    """Create an object if it is gone; if it is there, restore the fields at ``paths``."""

    op: Literal["recreate"] = "recreate"
    object: dict[str, Any]
    paths: list[ObjectPath] | None = None


class RestoreNamespace(_Op):
    """Wait out a Terminating namespace, recreate it, and re-apply every object it held."""

    op: Literal["namespace"] = "namespace"
    object: dict[str, Any]
    objects: list[dict[str, Any]] = Field(default_factory=list)


class ChaosToolkitRollbacks(_Op):
    """Play a Chaos Toolkit experiment's rollbacks."""

    op: Literal["chaostoolkit-rollbacks"] = "chaostoolkit-rollbacks"
    experiment: str
    title: str | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)
    #: The scenario's secrets overrides, as written (env-typed: no secret value sits in the ledger).
    secrets: dict[str, dict[str, Any]] | None = None
    #: ``chaos run --rollback-strategy``: default, always, never, deviated. None (a ledger written before
    #: strategies): always, as drills then did.
    strategy: Literal["default", "always", "never", "deviated"] | None = None
    #: Chaos Toolkit's run journal of the drill (status, deviated), which the strategy reads.
    run_journal: str | None = None
    kubeconfig: str
    context: str | None = None
    #: How many rollbacks the experiment declares (for what ``--dry-run`` and the ledger show).
    rollbacks: int = 0


class PodAnnotations(_Op):
    """Set annotations back on every live pod of a selector (pods created during the fault too)."""

    op: Literal["pod-annotations"] = "pod-annotations"
    namespace: str
    selector: str
    #: Annotation -> baseline value (None: the annotation is removed).
    annotations: dict[str, str | None]


class Delete(_Op):
    """Remove an object the fault created."""

    op: Literal["delete"] = "delete"
    kind: str
    namespace: str | None = None
    name: str


class Nothing(_Op):
    """Nothing to undo (killed pods come back through their controller)."""

    op: Literal["none"] = "none"
    why: str = "nothing to undo"


RevertOp = Annotated[
    Restore | Recreate | RestoreNamespace | ChaosToolkitRollbacks | PodAnnotations | Delete | Nothing,
    Field(discriminator="op"),
]
OP_NAMES: tuple[str, ...] = (
    "restore",
    "recreate",
    "namespace",
    "chaostoolkit-rollbacks",
    "pod-annotations",
    "delete",
    "none",
)

_OPS: TypeAdapter[list[RevertOp]] = TypeAdapter(list[RevertOp])


def parse_ops(raw: Sequence[RevertOp | Mapping[str, Any]]) -> list[RevertOp]:
    """Operations from their JSON form (or already typed); raises pydantic's ValidationError."""
    return _OPS.validate_python(list(raw))


def op_problems(e: ValidationError, prefix: str = "ops") -> list[str]:
    """pydantic's errors about a list of operations, one line each (``ops[2].name: Field required``)."""
    lines = []
    for err in e.errors():
        loc = list(err["loc"])
        where = prefix
        if loc and isinstance(loc[0], int):
            where += f"[{loc.pop(0)}]"
        if err["type"] == "union_tag_invalid":
            tag = (err.get("ctx") or {}).get("tag")
            lines.append(f"{where}: unknown revert operation {tag!r} (known: {', '.join(OP_NAMES)})")
            continue
        if err["type"] == "union_tag_not_found":
            lines.append(f"{where}: no 'op' (one of: {', '.join(OP_NAMES)})")
            continue
        if loc and isinstance(loc[0], str) and loc[0] in OP_NAMES:
            loc.pop(0)  # the union member's tag: already said by the operation itself
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
        lines.append(f"{where}{'.' + field if field else ''}: {err['msg']}")
    return lines


def dump_ops(ops: Sequence[RevertOp]) -> list[dict[str, Any]]:
    """The ledger's JSON form: the keys ledgers have always held, absent fields left out."""
    return [op.model_dump(mode="json", exclude_none=True) for op in ops]


__all__ = [
    "OP_NAMES",
    "BaselineValue",
    "ChaosToolkitRollbacks",
    "Delete",
    "Nothing",
    "ObjectPath",
    "PodAnnotations",
    "Recreate",
    "Restore",
    "RestoreNamespace",
    "RevertOp",
    "dump_ops",
    "op_problems",
    "parse_ops",
]
