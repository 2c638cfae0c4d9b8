"""What a round-trip YAML tree (ruamel ``typ="rt"``) tells about where its values are written,
and the plain data it holds: shared by the node's config loader and the orchestrator's scenario
loader, whose errors name FILE:LINE of the field at fault."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

Loc = tuple[str | int, ...]
"""A value's place in the tree: keys and list indices from the root (``("faults", 1, "at")``)."""


def key_lines(tree: Any, loc: Loc = ()) -> dict[Loc, int]:
    """1-based line of every key and list item of a round-trip tree, by location (the root,
    ``()``, is line 1). Keys are as written (``str()`` of non-string keys). Keys brought in by
    a merge (``<<``) have no position of their own and are left out."""
    lines: dict[Loc, int] = {(): 1} if loc == () else {}
    if isinstance(tree, CommentedMap):
        for key in tree:
            try:
                line = tree.lc.key(key)[0] + 1
            except (KeyError, TypeError):
                continue
            lines[(*loc, str(key))] = line
            lines.update(key_lines(tree[key], (*loc, str(key))))
    elif isinstance(tree, CommentedSeq):
        for index, item in enumerate(tree):
            try:
                lines[(*loc, index)] = tree.lc.item(index)[0] + 1
            except (KeyError, TypeError):
                continue
            lines.update(key_lines(item, (*loc, index)))
    return lines


def plain(node: Any) -> Any:
    """Round-trip types (CommentedMap, ScalarFloat, ScalarBoolean, ...) -> plain dict (string
    keys), list, bool, int, float, str; a date or timestamp as ISO text."""
    if isinstance(node, Mapping):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [plain(item) for item in node]
    if node is None:
        return None
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime | date):
        return node.isoformat()
    return str(node)
