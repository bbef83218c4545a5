"""YAML as the 1.2 core schema reads it: ``yes`` is text, ``12:30:00`` is text, ``true`` is a boolean.

PyYAML implements YAML 1.1, whose implicit types surprise people writing scenarios: ``yes``/``no``/``on``/
``off`` become booleans (``cost: yes`` was read as 1), ``12:30:00`` a sexagesimal integer (45000), ``0o17``
is not a number but ``017`` is 15, and ``2026-01-01`` a date. YAML 1.2's core schema (what the YAML language
server and most other tools use) keeps all of these as text except ``true``/``false``, decimal, ``0o`` octal
and ``0x`` hex integers, and plain floats. This module gives the composer those resolvers and the
constructor matching scalar builders; ASCII digits only (Python's ``int()`` also takes ``٣``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$", re.ASCII)
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", re.ASCII)
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    re.ASCII,
)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$", re.ASCII)
_MERGE_RE = re.compile(r"^(?:<<)$")


class CoreLoader(yaml.SafeLoader):
    """SafeLoader whose implicit resolvers are YAML 1.2 core's (plus ``<<`` merge keys, which people use)."""


# Replace, not extend, SafeLoader's 1.1 resolvers (add_implicit_resolver copies the parent's table first).
CoreLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    (_BOOL, _BOOL_RE, list("tTfF")),
    (_INT, _INT_RE, list("-+0123456789")),
    (_FLOAT, _FLOAT_RE, list("-+0123456789.")),
    (_NULL, _NULL_RE, ["~", "n", "N", ""]),
    (_MERGE, _MERGE_RE, ["<"]),
):
    CoreLoader.add_implicit_resolver(_tag, _regexp, _first)


class CoreConstructor(SafeConstructor):
    """Builds scalars as the 1.2 core schema defines them, also for explicit tags (``!!bool yes`` is refused)."""

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        value = str(self.construct_scalar(node))
        if not _BOOL_RE.match(value):
            raise ConstructorError(None, None, f"{value!r} is not true or false", node.start_mark)
        return value.lower() == "true"

    def construct_yaml_int(self, node: ScalarNode) -> int:
        value = str(self.construct_scalar(node))
        if not _INT_RE.match(value):
            raise ValueError(f"{value!r} is not a whole number (decimal, 0o octal or 0x hex digits)")
        if value.startswith("0o"):
            return int(value[2:], 8)
        if value.startswith("0x"):
            return int(value[2:], 16)
        return int(value, 10)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value = str(self.construct_scalar(node))
        if not _FLOAT_RE.match(value) and not _INT_RE.match(value):
            raise ValueError(f"{value!r} is not a number")
        lowered = value.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        if value.startswith(("0o", "0x")):
            return float(self.construct_yaml_int(node))
        return float(value)

    def construct_yaml_null(self, node: ScalarNode) -> None:
        value = str(self.construct_scalar(node))
        if not _NULL_RE.match(value):
            raise ConstructorError(None, None, f"{value!r} is not null", node.start_mark)


CoreConstructor.add_constructor(_BOOL, CoreConstructor.construct_yaml_bool)  # type: ignore[type-var]  # the stubs expect a Loader
CoreConstructor.add_constructor(_INT, CoreConstructor.construct_yaml_int)  # type: ignore[type-var]  # the stubs expect a Loader
CoreConstructor.add_constructor(_FLOAT, CoreConstructor.construct_yaml_float)  # type: ignore[type-var]  # the stubs expect a Loader
CoreConstructor.add_constructor(_NULL, CoreConstructor.construct_yaml_null)  # type: ignore[type-var]  # the stubs expect a Loader


def core_safe_load(text: str) -> Any:
    """``yaml.safe_load`` with the 1.2 core schema (for files read without line numbers)."""
    loader = CoreLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return None
    return CoreConstructor().construct_document(node)


__all__ = ["CoreConstructor", "CoreLoader", "core_safe_load"]
