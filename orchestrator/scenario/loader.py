"""Scenario files -> validated ``Scenario``, with every error pointing at its YAML line.

A SCENARIO argument is a path or the name of a built-in
(``orchestrator/scenario/builtins/<name>.yaml``, shipped as package data). The file is read
with ruamel.yaml's round-trip loader (it keeps the line of every key and list item),
``--set key=value`` overrides are applied to that tree, and pydantic errors are mapped back to
``FILE:LINE: field.path: message`` (or, for a value that came from an override,
``--set key=value: field.path: message``). All problems are reported together.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from orchestrator.errors import ScenarioError, ScenarioIssue
from orchestrator.faults.kinds import KINDS
from orchestrator.scenario.model import Loc, Scenario, ScenarioSource, format_loc

SCENARIO_SUFFIXES = (".yaml", ".yml")


# ----------------------------------------------------------------------------- built-ins


def builtin_dir() -> Path:
    """The folder of the built-in scenarios (package data of ``orchestrator.scenario``, next to this
    module; found by file location so it also works when ``orchestrator`` is imported as a
    namespace package, e.g. through a stale editable install)."""
    return Path(__file__).resolve().parent / "builtins"


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names -> files, sorted by name."""
    folder = builtin_dir()
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.yaml"), key=lambda p: p.stem)}


def resolve_scenario_ref(ref: str | Path) -> Path:
    """The file a SCENARIO argument names: an existing path, else a built-in name.

    Raises ScenarioError for a missing path or an unknown name (listing the built-ins)."""
    path = Path(ref)
    if path.is_file():
        return path
    text = str(ref)
    builtins = builtin_scenarios()
    if text in builtins:
        return builtins[text]
    names = ", ".join(builtins) or "(none installed)"
    if path.suffix in SCENARIO_SUFFIXES or "/" in text or path.exists():
        what = "is a directory, not a scenario file" if path.is_dir() else "does not exist"
        raise ScenarioError.single(
            text, f"scenario file {what}; give a YAML file or a built-in name: {names}"
        )
    close = difflib.get_close_matches(text, list(builtins), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ScenarioError.single(
        text,
        f"no scenario file or built-in named {text!r}{hint}; built-ins: {names} "
        "(list them with `aitbc-testnet scenarios`)",
    )


# ----------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    """One ``--set key=value``: the dotted path (list indices as ints), the value parsed as
    YAML, and the flag text for error messages."""

    path: tuple[str | int, ...]
    value: Any
    flag: str


def parse_override(text: str) -> Override:
    """``faults.0.at=25s`` -> Override(('faults', 0, 'at'), '25s'). Raises ScenarioError."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError.single(
            "<--set>", "expected key=value with a dotted key, e.g. load.tps=500", flag=text
        )
    parts = key.split(".")
    if any(not part for part in parts):
        raise ScenarioError.single(
            "<--set>", f"key {key!r} has an empty part; use dots between names", flag=text
        )
    path = tuple(int(part) if part.isdigit() else part for part in parts)
    try:
        value = YAML(typ="safe").load(raw) if raw.strip() else None
    except YAMLError as exc:
        raise ScenarioError.single(
            "<--set>", f"value {raw!r} is not valid YAML: {_yaml_problem(exc)}", flag=text
        ) from exc
    return Override(path=path, value=_plain(value), flag=text)


def apply_override(tree: CommentedMap, override: Override, file: str) -> Loc:
    """Set ``override`` in the round-trip tree (creating missing sections). Returns the
    location it set. Raises ScenarioError naming the flag."""
    node: Any = tree
    loc: list[str | int] = []
    for position, part in enumerate(override.path):
        last = position == len(override.path) - 1
        where = format_loc(loc) or "the scenario"
        if isinstance(node, MutableMapping):
            key = str(part)
            loc.append(key)
            if last:
                node[key] = override.value
            else:
                if key not in node or node[key] is None:
                    next_part = override.path[position + 1]
                    node[key] = CommentedSeq() if isinstance(next_part, int) else CommentedMap()
                node = node[key]
        elif isinstance(node, list):
            if not isinstance(part, int):
                raise ScenarioError.single(
                    file,
                    f"{where} is a list: use an index (e.g. {where}.0), not {part!r}",
                    flag=override.flag,
                )
            if part > len(node) or (part == len(node) and not last):
                raise ScenarioError.single(
                    file,
                    f"{where} has {len(node)} entries; index {part} does not exist",
                    flag=override.flag,
                )
            loc.append(part)
            if last:
                if part == len(node):
                    node.append(override.value)
                else:
                    node[part] = override.value
            else:
                if node[part] is None:
                    next_part = override.path[position + 1]
                    node[part] = CommentedSeq() if isinstance(next_part, int) else CommentedMap()
                node = node[part]
        else:
            raise ScenarioError.single(
                file, f"{where} is a value ({node!r}), not a section", flag=override.flag
            )
    return tuple(loc)


# ----------------------------------------------------------------------------- loading


def load_scenario(ref: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario (path or built-in name).

    Raises ScenarioError with every problem found, each with file, line and field."""
    path = resolve_scenario_ref(ref)
    file = str(ref) if Path(ref).is_file() else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError.single(file, f"cannot read the scenario file: {exc}") from exc
    return parse_scenario_text(text, file=file, path=path.resolve(), overrides=overrides)


def parse_scenario_text(
    text: str, *, file: str = "<string>", path: Path | None = None, overrides: Sequence[str] = ()
) -> Scenario:
    """Validate scenario YAML given as text (``file`` is what messages call it)."""
    parsed = [parse_override(item) for item in overrides]
    tree = _read_yaml(text, file)
    source_lines = _collect_lines(tree)
    overridden: dict[Loc, str] = {}
    for override in parsed:
        overridden[apply_override(tree, override, file)] = override.flag
    source = ScenarioSource(file=file, path=path, lines=source_lines, overrides=overridden)
    data = _plain(tree)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_issues(exc, source, data)) from None
    return scenario.with_source(source)


def _read_yaml(text: str, file: str) -> CommentedMap:
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError.single(
            file, f"YAML syntax error: {_yaml_problem(exc)}", line=line
        ) from None
    except YAMLError as exc:
        raise ScenarioError.single(file, f"YAML syntax error: {exc}") from None
    if tree is None:
        raise ScenarioError.single(file, "the scenario file is empty; start from a built-in")
    if not isinstance(tree, CommentedMap):
        raise ScenarioError.single(
            file,
            f"the scenario must be a mapping (name:, network:, load: ...), "
            f"not a {type(tree).__name__}",
            line=1,
        )
    return tree


def _yaml_problem(exc: YAMLError) -> str:
    if isinstance(exc, MarkedYAMLError):
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark is not None:
            return f"{problem} ({exc.context} at line {exc.context_mark.line + 1})"
        return problem
    return str(exc)


def _collect_lines(tree: Any, loc: Loc = ()) -> dict[Loc, int]:
    """1-based line of every key and list item of a round-trip tree, by location."""
    lines: dict[Loc, int] = {}
    if loc == ():
        lines[()] = 1
    if isinstance(tree, CommentedMap):
        for key in tree:
            try:
                line = tree.lc.key(key)[0] + 1
            except (KeyError, TypeError):  # keys brought in by a merge (<<) have no position
                continue
            lines[(*loc, key)] = line
            lines.update(_collect_lines(tree[key], (*loc, key)))
    elif isinstance(tree, CommentedSeq):
        for index, item in enumerate(tree):
            try:
                lines[(*loc, index)] = tree.lc.item(index)[0] + 1
            except (KeyError, TypeError):
                continue
            lines.update(_collect_lines(item, (*loc, index)))
    return lines


def _plain(node: Any) -> Any:
    """Round-trip types (CommentedMap, ScalarFloat, ...) -> plain dict/list/int/float/str."""
    if isinstance(node, Mapping):
        return {_plain(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node if node is None else bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime | date):
        return node.isoformat()
    return node


# ----------------------------------------------------------------------------- error mapping


def _issues(error: ValidationError, source: ScenarioSource, data: Any) -> list[ScenarioIssue]:
    issues: list[ScenarioIssue] = []
    seen: set[str] = set()
    for detail in error.errors():
        loc = tuple(detail["loc"])
        issue = source.issue(loc, _message(detail, loc, data))
        if str(issue) not in seen:
            seen.add(str(issue))
            issues.append(issue)
    return sorted(issues, key=lambda i: (i.flag is None, i.line or 0))


def _message(detail: ErrorDetails, loc: Loc, data: Any) -> str:
    kind, message = detail["type"], detail["msg"]
    if kind == "extra_forbidden":
        name = loc[-1] if loc else "?"
        allowed = _allowed_fields(loc[:-1], data)
        if allowed is None:
            return f"unknown field {name!r}"
        if not allowed:
            fault_kind = _get(data, (*loc[:-2], "kind")) if loc[-2:-1] == ("params",) else None
            what = f"{fault_kind} takes no params" if fault_kind else "this section takes no fields"
            return f"unknown field {name!r}: {what}"
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown field {name!r}{hint}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return "required field is missing"
    message = message.removeprefix("Value error, ")
    value = detail.get("input")
    if (
        kind != "scenario"
        and isinstance(value, str | int | float | bool)
        and repr(value) not in (message)
    ):
        message = f"{message} (got {value!r})"
    return message


def _allowed_fields(loc: Loc, data: Any) -> list[str] | None:
    """Field names of the model at ``loc`` (None when it is not a model)."""
    annotation: Any = Scenario
    for position, part in enumerate(loc):
        if isinstance(part, int):
            annotation = _list_item(annotation)
            continue
        model = _model_of(annotation)
        if model is None:
            return None
        if model.__name__ == "FaultSpec" and part == "params":
            kind = _get(data, (*loc[:position], "kind"))
            known = {fault_kind.name: fault_kind.params for fault_kind in KINDS}
            annotation = known.get(kind) if isinstance(kind, str) else None
            continue
        if part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
    model = _model_of(annotation)
    return None if model is None else list(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _model_of(arg)
            if model is not None:
                return model
    return None


def _list_item(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(
            (a for a in typing.get_args(annotation) if typing.get_origin(a) is list), None
        )
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    return None


def _get(data: Any, loc: Iterable[str | int]) -> Any:
    for part in loc:
        if isinstance(data, Mapping):
            if part not in data:
                return None
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
