"""Reading scenario, policy, plan and responder files: YAML in, a validated model or *every* problem out.

People write these files by hand, so a mistake must come back as ``file:line: field.path: message`` with a
message a person understands, never as a traceback or a pydantic dump. PyYAML's composer gives us nodes with
line numbers; we build plain Python data from them ourselves (recording the line of every key and value,
refusing duplicate keys, unknown tags, recursive aliases and alias bombs), validate it with the pydantic
model, then map each pydantic error location back to a line and rewrite its message.

Any model can be loaded this way (:func:`load_model`), so policy files, DR plans and bot responder profiles
get the same errors as scenarios.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from drills.adapters.core_yaml import CoreConstructor, CoreLoader, core_safe_load
from drills.adapters.reading import MAX_BYTES, UnreadableFile, read_bounded
from drills.adapters.store.paths import fixtures_dir, repo_root, scenarios_dir
from drills.engine.comms import TEMPLATE_IDS
from drills.engine.slo import alert_name, slis
from drills.errors import Problem, ScenarioError, UsageError
from drills.model.policy import Policy
from drills.model.scenario import ChaosToolkitFault, NamespaceLostFault, PluginFault, Scenario, rule_problems
from drills.model.service_graph import ServiceGraphOverride
from drills.model.slo import Slo

M = TypeVar("M", bound=BaseModel)

PathPart = str | int
DataPath = tuple[PathPart, ...]

#: Values built from one document, counting each alias expansion: stops "billion laughs" alias bombs.
MAX_VALUES = 100_000
#: Nesting depth; PyYAML's composer and pydantic both recurse.
MAX_DEPTH = 64

SCENARIO_SUFFIXES = (".yaml", ".yml")
FAULT_PLUGIN_GROUP = "drills.faults"

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


# ---- YAML with line numbers -----------------------------------------------------------------------------


@dataclass
class YamlDocument:
    """Plain data built from one YAML document, with the line of every value and key (1-based)."""

    file: str
    data: Any
    value_lines: dict[DataPath, int] = field(default_factory=dict)
    key_lines: dict[DataPath, int] = field(default_factory=dict)
    #: The source text of scalars, to show ``0123`` rather than the 83 YAML 1.1 made of it.
    scalar_text: dict[DataPath, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: DataPath, *, key: bool = False) -> int:
        """The line of ``path`` (its key's line with ``key=True``), or of its nearest ancestor that exists."""
        # A key's line is where a person looks, also for a block mapping that starts on the next line.
        if path in self.key_lines:
            return self.key_lines[path]
        p = path
        while p:
            if p in self.value_lines:
                return self.value_lines[p]
            p = p[:-1]
            if p in self.key_lines and not key:
                # A missing field inside a mapping: point at the line that names the mapping.
                return self.key_lines[p]
        return self.value_lines.get((), 1)

    def problem(self, path: DataPath, message: str, *, key: bool = False) -> Problem:
        return Problem(self.file, self.line(path, key=key), format_path(path), message)


class _TooBigError(Exception):
    pass


class _Builder:
    """Builds plain data from composed nodes, recording lines and refusing what YAML allows but we do not."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.constructor = CoreConstructor()
        self.count = 0
        self.flattened: set[int] = set()

    def build(self, node: Node, path: DataPath, active: tuple[int, ...] = ()) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooBigError
        line = node.start_mark.line + 1
        self.doc.value_lines.setdefault(path, line)
        if len(path) > MAX_DEPTH:
            self.doc.problems.append(self.doc.problem(path, f"nested more than {MAX_DEPTH} levels deep"))
            return None
        if id(node) in active:
            self.doc.problems.append(self.doc.problem(path, "an alias refers to itself (recursive YAML)"))
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (_MAP, _SEQ):
            self.doc.problems.append(self.doc.problem(path, f"unsupported YAML tag {_short_tag(node.tag)}"))
        inner = (*active, id(node))
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), inner) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, inner)
        return None  # pragma: no cover - the composer only makes these three kinds

    def _scalar(self, node: ScalarNode, path: DataPath) -> Any:
        self.doc.scalar_text[path] = node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as e:
            if node.tag in self.constructor.yaml_constructors:
                # A known tag whose text does not fit it: `!!bool yes`, `!!binary` with bad padding.
                reason = e.problem or f"not a valid {_short_tag(node.tag)}"
                self.doc.problems.append(
                    self.doc.problem(path, f"{node.value[:40]!r} cannot be read: {reason}")
                )
            else:
                self.doc.problems.append(
                    self.doc.problem(path, f"unsupported YAML tag {_short_tag(node.tag)}")
                )
        except Exception as e:
            # PyYAML's scalar constructors fail in many ways on explicit tags: `!!timestamp x` is an
            # AttributeError, a number past Python's 4300-digit limit a ValueError, a bad !!binary a
            # binascii.Error. Each is a problem of this value, never the end of the batch.
            reason = str(e) or type(e).__name__
            if isinstance(e, AttributeError | KeyError | IndexError):
                reason = f"not a valid {_short_tag(node.tag)}"
            self.doc.problems.append(self.doc.problem(path, f"{node.value[:40]!r} cannot be read: {reason}"))
        return None

    def _mapping(self, node: MappingNode, path: DataPath, active: tuple[int, ...]) -> dict[str, Any]:
        if id(node) not in self.flattened:
            self.flattened.add(id(node))
            self._check_duplicates(node, path)
            try:
                self.constructor.flatten_mapping(node)  # `<<: *defaults` merge keys
            except yaml.MarkedYAMLError as e:
                self.doc.problems.append(_syntax_problem(self.doc.file, e))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.doc.problems.append(
                    Problem(
                        self.doc.file, key_node.start_mark.line + 1, format_path(path), "a key must be text"
                    )
                )
                continue
            # The key as written: YAML 1.1 would turn `on:` into True and `1:` into 1; our keys are names.
            key = key_node.value
            self.doc.key_lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*path, key), active)
        return result

    def _check_duplicates(self, node: MappingNode, path: DataPath) -> None:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first:
                self.doc.problems.append(
                    Problem(
                        self.doc.file,
                        line,
                        format_path((*path, key_node.value)),
                        f"duplicate key (first on line {first[key_node.value]}); the later value would win",
                    )
                )
            else:
                first[key_node.value] = line


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _syntax_problem(file: str, e: yaml.MarkedYAMLError) -> Problem:
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = (e.problem or "").strip()
    if "'\\t'" in problem or "\t" in problem:
        return Problem(file, line, "", "a tab character: YAML indents with spaces only")
    if "expected a single document" in (e.context or "") + problem:
        return Problem(
            file, line, "", "more than one YAML document (---) in the file; put one scenario per file"
        )
    context = (e.context or "").strip()
    message = f"YAML syntax: {problem}" + (f" ({context})" if context and context != problem else "")
    return Problem(file, line, "", message)


_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")  # YAML's line breaks, as its marks count them


def _line_at(text: str, position: int) -> int:
    return len(_LINE_BREAK.findall(text, 0, max(position, 0))) + 1


def parse_yaml(content: bytes | str, *, file: str) -> YamlDocument:
    """Build plain data with line numbers from one YAML document. Raises ScenarioError if it is not YAML."""
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            raise ScenarioError(
                [Problem(file, 1, "", f"file is too large ({len(content)} bytes; limit {MAX_BYTES})")]
            )
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = _line_at(content[: e.start].decode("utf-8", "replace"), e.start)
            raise ScenarioError(
                [
                    Problem(
                        file,
                        line,
                        "",
                        f"not UTF-8 text (byte 0x{content[e.start]:02x}); save the file as UTF-8",
                    )
                ]
            ) from None
    else:
        text = content.removeprefix("\ufeff")
        if len(text) > MAX_BYTES:
            raise ScenarioError([Problem(file, 1, "", f"file is too large ({len(text)} characters)")])
    doc = YamlDocument(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=CoreLoader)
    except yaml.reader.ReaderError as e:
        line = _line_at(text, e.position)
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise ScenarioError([Problem(file, line, "", f"character {char} is not allowed in YAML")]) from None
    except yaml.MarkedYAMLError as e:
        raise ScenarioError([_syntax_problem(file, e)]) from None
    except yaml.YAMLError as e:
        raise ScenarioError([Problem(file, 1, "", f"YAML error: {e}")]) from None
    except RecursionError:
        raise ScenarioError([Problem(file, 1, "", "nested too deeply to read")]) from None
    if node is None:
        raise ScenarioError(
            [Problem(file, 1, "", "the file is empty; expected a mapping of fields (key: value)")]
        )
    try:
        doc.data = _Builder(doc).build(node, ())
    except _TooBigError:
        raise ScenarioError(
            [
                Problem(
                    file, 1, "", f"more than {MAX_VALUES} values once aliases are expanded (an alias bomb?)"
                )
            ]
        ) from None
    return doc


# ---- pydantic errors -> problems ------------------------------------------------------------------------


def format_path(path: Sequence[PathPart]) -> str:
    """``('faults', 0, 'image')`` -> ``faults[0].image``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _members(tp: Any) -> list[Any]:
    """Flatten Annotated, Optional and unions into the types a value may be."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [m for a in get_args(tp) for m in _members(a)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_members(options: list[Any], tag: str) -> list[Any]:
    """Members of a discriminated union whose Literal discriminator accepts ``tag``."""
    found = []
    for m in options:
        if not _is_model(m):
            continue
        for f in m.model_fields.values():
            if get_origin(f.annotation) is Literal and tag in get_args(f.annotation):
                found.append(m)
                break
    return found


def _children(options: list[Any], part: PathPart) -> list[Any]:
    out: list[Any] = []
    for m in options:
        if _is_model(m) and isinstance(part, str) and part in m.model_fields:
            out.extend(_members(m.model_fields[part].annotation))
            continue
        origin = get_origin(m)
        args = get_args(m)
        if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
            out.extend(_members(args[0]))
        elif origin is dict and isinstance(part, str) and len(args) == 2:
            out.extend(_members(args[1]))
    return out


@dataclass
class _Located:
    path: DataPath  # in the data (union tags removed)
    parent_models: list[type[BaseModel]]  # models that hold the last path part
    options: list[Any]  # the types the value at ``path`` may have
    present: bool  # the value exists in the data


def _locate(loc: tuple[PathPart, ...], root: type[BaseModel], data: Any) -> _Located:
    options: list[Any] = [root]
    parents: list[type[BaseModel]] = [root]
    cur: Any = data
    present = True
    path: list[PathPart] = []
    for part in loc:
        if isinstance(part, str) and not (isinstance(cur, dict) and part in cur):
            tagged = _tag_members(options, part)
            if tagged:
                options = tagged
                continue
        parents = [m for m in options if _is_model(m)]
        path.append(part)
        options = _children(options, part)
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if present and (in_dict or in_list):
            cur = cur[part]
        else:
            present = False
    if not path:
        parents = [m for m in options if _is_model(m)] or [root]
    return _Located(tuple(path), parents, options, present)


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return "a date"
    return type(value).__name__


def _show(value: Any, raw: str | None = None) -> str:
    if isinstance(value, dict | list) or value is None:
        return _kind_of(value)
    # Text is quoted; other scalars are shown as written (YAML 1.1 reads `0123` as 83).
    text = repr(value) if isinstance(value, str) else (raw if raw is not None else str(value))
    if isinstance(value, bool) and raw is None:
        text = "true" if value else "false"
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _did_you_mean(word: Any, options: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _message(err: dict[str, Any], where: _Located, doc: YamlDocument) -> tuple[str, DataPath, bool]:
    """A person's wording of one pydantic error, the data path to report, and whether to point at the key."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    path = where.path
    raw = doc.scalar_text.get(path)
    shown = _show(value, raw)
    if kind == "missing":
        return "required field is missing", path, False
    if kind == "extra_forbidden":
        allowed = sorted({name for m in where.parent_models for name in m.model_fields})
        hint = _did_you_mean(path[-1] if path else "", allowed)
        return f"unknown field{hint} (allowed: {', '.join(allowed)})", path, True
    if kind in ("enum", "literal_error"):
        choices = _choices(str(ctx.get("expected", "")))
        return (
            f"{shown} is not allowed{_did_you_mean(value, choices)} (allowed: {', '.join(choices)})",
            path,
            False,
        )
    if kind == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "kind")).strip("'")
        tags = _choices(str(ctx.get("expected_tags", "")))
        noun = {"kind": "fault kind", "probe": "probe", "type": "event type"}.get(disc, disc)
        tag = ctx.get("tag")
        return (
            f"unknown {noun} {tag!r}{_did_you_mean(tag, tags)} (known: {', '.join(tags)})",
            (*path, disc),
            False,
        )
    if kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "kind")).strip("'")
        tags = [
            t
            for m in where.options
            if _is_model(m) and disc in m.model_fields
            for t in get_args(m.model_fields[disc].annotation)
        ]
        return f"required field is missing (one of: {', '.join(tags)})", (*path, disc), False
    if kind == "invalid-json-value":
        return (
            f"only text, numbers, true/false, null, lists and mappings can be passed on, not {_kind_of(value)}",
            path,
            False,
        )
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        text = str(error) if error is not None else str(err["msg"]).removeprefix("Value error, ")
        return text, path, False
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == _NAME_PATTERN:
            return (
                f"{shown} must be lower-case letters, digits and dashes, and start and end with a letter "
                "or digit",
                path,
                False,
            )
        return f"{shown} does not match the pattern {ctx.get('pattern')}", path, False
    if isinstance(value, bool):
        got = f"{shown} (a boolean)"
    elif isinstance(value, dict | list) or value is None:
        got = _kind_of(value)
    else:
        got = f"{_kind_of(value)} {shown}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        where_text = " at the top level" if not path else ""
        return f"expected a mapping (key: value){where_text}, got {got}", path, False
    if kind == "list_type":
        return f"expected a list, got {got}", path, False
    if kind == "string_type":
        quotable = raw is not None and value is not None and not isinstance(value, dict | list)
        quote = f"; quote it: '{raw}'" if quotable else ""
        return f"expected text, got {got}{quote}", path, False
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {got}", path, False
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"expected a number, got {got}", path, False
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}", path, False
    if kind in ("too_short", "too_long"):
        least = ctx.get("min_length")
        most = ctx.get("max_length")
        if kind == "too_short":
            return f"needs at least {least} item{'s' if least != 1 else ''}", path, False
        return f"has more than {most} items", path, False
    if kind in ("string_too_short", "string_too_long"):
        if kind == "string_too_short":
            n = ctx.get("min_length")
            if n == 1:
                return "must not be empty", path, False
            return f"must be at least {n} characters", path, False
        return f"must be at most {ctx.get('max_length')} characters", path, False
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"must be {bounds[kind]} {limit} (got {shown})", path, False
    msg = str(err["msg"])
    return msg[:1].lower() + msg[1:], path, False


def validation_problems(e: ValidationError, model_cls: type[BaseModel], doc: YamlDocument) -> list[Problem]:
    problems = []
    for err in e.errors(include_url=False):
        where = _locate(tuple(err["loc"]), model_cls, doc.data)
        message, path, key = _message(dict(err), where, doc)
        line = doc.line(path, key=key)
        problems.append(Problem(doc.file, line, format_path(path), message))
    return problems


# ---- models from files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated model with its document, so callers can add their own located problems."""

    model: M
    doc: YamlDocument

    @property
    def file(self) -> str:
        return self.doc.file

    def line(self, *path: PathPart) -> int:
        return self.doc.line(tuple(path))

    def problem(self, path: Sequence[PathPart], message: str) -> Problem:
        return self.doc.problem(tuple(path), message)


def parse_model(content: bytes | str, model_cls: type[M], *, file: str) -> Loaded[M]:
    """Validate YAML content as ``model_cls``; raises ScenarioError with every problem."""
    doc = parse_yaml(content, file=file)
    problems = list(doc.problems)
    try:
        model = model_cls.model_validate(doc.data)
    except ValidationError as e:
        # A value the YAML reader already refused (and left null) needs no second "expected text, got null".
        refused = {p.field for p in doc.problems if p.field}
        problems.extend(p for p in validation_problems(e, model_cls, doc) if p.field not in refused)
        raise ScenarioError(_sorted(problems)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        # A validator raised what pydantic does not wrap: still a problem with the file, not a crash.
        problems.append(Problem(file, doc.line(()), "", f"cannot be validated: {type(e).__name__}: {e}"))
        raise ScenarioError(_sorted(problems)) from None
    if problems:
        raise ScenarioError(_sorted(problems))
    return Loaded(model, doc)


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.field))


def _read(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_BYTES (see drills.adapters.reading): never blocks, never floods."""
    try:
        return read_bounded(path, limit=MAX_BYTES)
    except UnreadableFile as e:
        raise ScenarioError([Problem(str(path), None, "", e.reason)]) from e


def load_located(path: Path, model_cls: type[M]) -> Loaded[M]:
    """Load a YAML file as ``model_cls``, keeping the line numbers (see :class:`Loaded`)."""
    path = Path(path)
    content = _read(path)
    try:
        return parse_model(content, model_cls, file=str(path))
    except ScenarioError:
        raise
    except Exception as e:
        # Whatever the loader did not foresee is still this file's problem: callers that load many files
        # (validate, list, plans) catch ScenarioError and go on to the next.
        raise ScenarioError([unexpected_problem(path, e)]) from e


def load_model(path: Path, model_cls: type[M]) -> M:
    """Load a YAML file as ``model_cls``; raises ScenarioError with every ``file:line: field: message``."""
    return load_located(path, model_cls).model


def load_policy(path: Path) -> Policy:
    return load_model(path, Policy)


# ---- scenarios ------------------------------------------------------------------------------------------


def allowed_roots(base_dir: Path) -> list[Path]:
    """Where files a scenario or plan points at may be: its own directory, the project (the repository, its
    fixtures and scenarios directories). Not ``/etc``, not ``../../`` out of them."""
    roots = [base_dir, repo_root(), fixtures_dir(), scenarios_dir()]
    return list(dict.fromkeys(r.resolve() for r in roots))


def confinement_problem(text: str, candidates: Sequence[Path], base_dir: Path, what: str) -> str | None:
    """Why ``text`` (already resolved to ``candidates``) points outside the allowed roots, or None."""
    roots = allowed_roots(base_dir)
    for candidate in candidates:
        real = candidate.resolve()
        if any(real == r or real.is_relative_to(r) for r in roots):
            return None
    return (
        f"{what} {text!r} is outside the scenario's directory ({base_dir.resolve()}) and the project "
        f"({repo_root()}); keep it inside them, e.g. fixtures/backups/<namespace>"
    )


def _rule_names(path: Path) -> frozenset[str] | None:
    """The alert names of a Prometheus rule file, or None when it cannot be read (then no check)."""
    try:
        data = core_safe_load(read_bounded(path).decode("utf-8"))
    except Exception:  # unreadable rules are the monitoring stack's error to report, not the scenario's
        return None
    names: set[str] = set()
    groups = data.get("groups") if isinstance(data, dict) else None
    for group in groups if isinstance(groups, list) else []:
        rules = group.get("rules") if isinstance(group, dict) else None
        for rule in rules if isinstance(rules, list) else []:
            if isinstance(rule, dict) and isinstance(rule.get("alert"), str):
                names.add(rule["alert"])
    return frozenset(names)


def slo_alert_names() -> frozenset[str]:
    """The burn-rate alerts drills generates from the world's SLO files (``fixtures/slo/*.yaml``)."""
    names: set[str] = set()
    for path in sorted((fixtures_dir() / "slo").glob("*.yaml")):
        try:
            slo = load_model(path, Slo)
        except ScenarioError:
            continue  # a broken SLO file is reported when it is loaded for the rules, not here
        names |= {alert_name(slo, sli, severity) for sli in slis(slo) for severity in ("page", "ticket")}
    return frozenset(names)


def alert_rules_path() -> Path:
    """The alert rules drills ships and the monitoring detector loads (fixtures/prometheus/rules.yaml)."""
    return fixtures_dir() / "prometheus" / "rules.yaml"


def scenario_problems(loaded: Loaded[Scenario], base_dir: Path) -> list[Problem]:
    """What the model alone cannot know: referenced files exist and stay in the project, plugins are
    installed, the expected alert and comms templates exist; plus the model's rules across fields."""
    scenario = loaded.model
    problems: list[Problem] = [loaded.problem(path, message) for path, message in rule_problems(scenario)]
    plugin_names: set[str] | None = None
    for i, fault in enumerate(scenario.faults):
        if isinstance(fault, ChaosToolkitFault):
            path = experiment_path(base_dir, fault.experiment)
            problem = confinement_problem(fault.experiment, [path], base_dir, "the experiment")
            if problem:
                problems.append(loaded.problem(("faults", i, "experiment"), problem))
            else:
                problems += _experiment_problems(loaded, i, fault, base_dir)
        elif isinstance(fault, NamespaceLostFault):
            problem = confinement_problem(
                fault.backup, _backup_candidates(fault.backup, base_dir), base_dir, "backup"
            )
            if problem:
                problems.append(loaded.problem(("faults", i, "backup"), problem))
        elif isinstance(fault, PluginFault):
            if plugin_names is None:
                plugin_names = {ep.name for ep in metadata.entry_points(group=FAULT_PLUGIN_GROUP)}
            if fault.name not in plugin_names:
                known = ", ".join(sorted(plugin_names)) or "none installed"
                problems.append(
                    loaded.problem(
                        ("faults", i, "name"),
                        f"no fault plugin {fault.name!r} in the {FAULT_PLUGIN_GROUP} entry points "
                        f"(known: {known})",
                    )
                )
    alert = scenario.detection.expected_alert
    if alert is not None:
        names = _rule_names(alert_rules_path())
        if names is not None:
            names = names | slo_alert_names()
        if names is not None and alert not in names:
            problems.append(
                loaded.problem(
                    ("detection", "expected_alert"),
                    f"no alert rule {alert!r} in {alert_rules_path()} or the SLO files"
                    f"{_did_you_mean(alert, names)} (known: {', '.join(sorted(names))})",
                )
            )
    problems.extend(_service_graph_problems(loaded))
    for i, template in enumerate(scenario.expected_response.comms or []):
        if template.strip().lower().replace("-", "_") not in TEMPLATE_IDS:
            problems.append(
                loaded.problem(
                    ("expected_response", "comms", i),
                    f"no communication template {template!r}{_did_you_mean(template, TEMPLATE_IDS)} "
                    f"(known: {', '.join(TEMPLATE_IDS)})",
                )
            )
    return problems


def _graph_error(e: ValueError) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(
            (f"{'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "")
            + str(err["msg"]).removeprefix("Value error, ")
            for err in e.errors()
        )
    return str(e)


def _service_graph_problems(loaded: Loaded[Scenario]) -> list[Problem]:
    """A scenario's ``service_graph:`` must leave a valid graph once merged into the world's."""
    override = loaded.model.service_graph
    if override is None:
        return []
    from drills.adapters.files.impact import (
        load_service_graph,
    )  # the graph's file loader builds on this module

    try:
        world = load_service_graph()
    except ScenarioError:
        return []  # the world's own graph is broken: reported where it is loaded
    problems: list[Problem] = []
    for name, patch in override.services.items():
        try:
            world.merged(ServiceGraphOverride(services={name: patch}))
        except ValueError as e:
            words = _graph_error(e).removeprefix(f"services.{name}: ")
            problems.append(loaded.problem(("service_graph", "services", name), words))
    if not problems:
        try:
            world.merged(override)
        except ValueError as e:
            problems.append(loaded.problem(("service_graph",), _graph_error(e)))
    return problems


def _backup_candidates(text: str, base_dir: Path) -> list[Path]:
    p = Path(text).expanduser()
    return [p] if p.is_absolute() else [base_dir / p, repo_root() / p]


def experiment_path(base_dir: Path, experiment: str) -> Path:
    """Where a chaostoolkit fault's experiment file is: relative to the scenario's directory."""
    p = Path(experiment).expanduser()
    return p if p.is_absolute() else base_dir / p


def _experiment_problems(
    loaded: Loaded[Scenario], i: int, fault: ChaosToolkitFault, base_dir: Path
) -> list[Problem]:
    """Every problem of a chaostoolkit fault's experiment, as chaoslib would find it with the fault's
    ``configuration``/``secrets`` merged in: each names the experiment file (and line), the activity, the field."""
    from drills.adapters.chaostoolkit import experiment_problems, parse_experiment

    path = experiment_path(base_dir, fault.experiment)
    here = ("faults", i, "experiment")
    try:
        text = read_bounded(path, limit=MAX_BYTES).decode("utf-8")
    except UnreadableFile as e:
        if e.reason == "no such file":
            return [loaded.problem(here, f"no Chaos Toolkit experiment at {path}")]
        return [loaded.problem(here, f"cannot read the Chaos Toolkit experiment {path}: {e.reason}")]
    except UnicodeDecodeError as e:
        return [loaded.problem(here, f"cannot read the Chaos Toolkit experiment {path}: {e}")]
    try:
        data = parse_experiment(text, path)
    except Exception as e:  # PyYAML's constructors raise more than YAMLError on explicit tags
        kind = "JSON" if path.suffix == ".json" else "YAML"
        return [loaded.problem(here, f"the Chaos Toolkit experiment {path} is not valid {kind}: {e}")]
    if not isinstance(data, dict):
        return [loaded.problem(here, f"the Chaos Toolkit experiment {path} is not a mapping")]
    found = experiment_problems(data, configuration=fault.configuration, secrets=fault.secrets)
    if not found:
        return []
    try:
        # JSON is YAML 1.2 too: the same reader gives the line of every activity and field.
        lines: YamlDocument | None = parse_yaml(text, file=str(path))
    except ScenarioError:
        lines = None
    return [
        Problem(str(path), lines.line(p.path) if lines else None, format_path(p.path) or p.field, _said(p))
        for p in found
    ]


def _said(p: Any) -> str:
    return f"activity {p.activity!r}: {p.message}" if p.activity else p.message


def load_scenario(path: Path) -> Scenario:
    """Load and check one scenario file; raises ScenarioError with every problem found."""
    path = Path(path)
    loaded = load_located(path, Scenario)
    problems = scenario_problems(loaded, path.parent)
    if problems:
        raise ScenarioError(problems)
    return loaded.model


def parse_scenario(
    content: bytes | str, *, file: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Like :func:`load_scenario` for content already in memory."""
    loaded = parse_model(content, Scenario, file=file)
    problems = scenario_problems(loaded, base_dir or Path.cwd())
    if problems:
        raise ScenarioError(problems)
    return loaded.model


def scenario_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Expand directories to their ``*.yaml``/``*.yml`` files (not recursively: ``plans/`` and
    ``experiments/`` below ``scenarios/`` hold other kinds of files)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            # Every *.yaml that is not a directory: a FIFO or a device by that name is reported (the
            # bounded reader refuses it), not silently left out of the batch.
            found = sorted(f for f in p.iterdir() if f.suffix in SCENARIO_SUFFIXES and not f.is_dir())
            if not found:
                problems.append(
                    Problem(str(p), None, "", "no scenario files (*.yaml, *.yml) in this directory")
                )
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append(Problem(str(p), None, "", "no such file or directory"))
    return files, problems


def load_scenarios(paths: Iterable[Path]) -> tuple[list[tuple[Path, Scenario]], list[Problem]]:
    """Every valid scenario under ``paths`` and every problem of the others (ids must be unique too)."""
    files, problems = scenario_files(paths)
    loaded: list[tuple[Path, Scenario]] = []
    where: dict[str, Path] = {}
    for f in files:
        try:
            scenario = load_scenario(f)
        except ScenarioError as e:
            problems.extend(e.problems)
            continue
        except Exception as e:
            # The loader turns every known failure into problems; should something unforeseen still
            # escape, it is this file's problem and the batch goes on (its other results are not lost).
            problems.append(unexpected_problem(f, e))
            continue
        if scenario.id in where:
            line = _id_line(f)
            problems.append(
                Problem(
                    str(f), line, "id", f"scenario id {scenario.id!r} is also used by {where[scenario.id]}"
                )
            )
            continue
        where[scenario.id] = f
        loaded.append((f, scenario))
    return loaded, problems


def unexpected_problem(path: Path, e: BaseException) -> Problem:
    """A file's problem for an error the loader did not foresee (a bug in drills, not in the file)."""
    return Problem(
        str(path),
        None,
        "",
        f"cannot be loaded ({type(e).__name__}: {str(e)[:200]}); this is a bug in drills, please report it",
    )


def _id_line(path: Path) -> int | None:
    try:
        return parse_yaml(_read(path), file=str(path)).line(("id",))
    except (ScenarioError, OSError):
        return None


def find_scenario(name_or_path: str | Path, directory: Path | None = None) -> Path:
    """A scenario file from a path, a file name in the scenarios directory, or a scenario id."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    base = directory or scenarios_dir()
    text = str(name_or_path)
    for suffix in ("", *SCENARIO_SUFFIXES):
        candidate = base / f"{text}{suffix}"
        if candidate.is_file() and candidate.suffix in SCENARIO_SUFFIXES:
            return candidate
    found, _ = load_scenarios([base]) if base.is_dir() else ([], [])
    for path, scenario in found:
        if scenario.id == text:
            return path
    ids = sorted(s.id for _, s in found)
    close = difflib.get_close_matches(text, ids, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(
        f"no scenario {text!r} (not a file, and no scenario in {base} has that id)",
        hint=f"{hint}`drill list` shows the scenarios",
    )


__all__ = [
    "MAX_BYTES",
    "Loaded",
    "YamlDocument",
    "alert_rules_path",
    "allowed_roots",
    "confinement_problem",
    "experiment_path",
    "find_scenario",
    "format_path",
    "load_located",
    "load_model",
    "load_policy",
    "load_scenario",
    "load_scenarios",
    "parse_model",
    "parse_scenario",
    "parse_yaml",
    "scenario_files",
    "scenario_problems",
    "unexpected_problem",
    "validation_problems",
]
