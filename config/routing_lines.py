"""Where each key of a routing file is written: key path → line number, for error messages."""

from __future__ import annotations

import re

import yaml

__all__ = ["locate_toml", "locate_yaml"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def locate_toml(text: str) -> dict[tuple[str, ...], int]:
    """Best effort: tables, arrays of tables (numbered from 0) and `key = value` lines; 1-based lines."""
    found: dict[tuple[str, ...], int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()

    def resolve(path: tuple[str, ...]) -> tuple[str, ...]:
        # A header inside an array of tables refers to its latest element: [rules.when] → rules.N.when.
        out: list[str] = []
        for part in path:
            out.append(part)
            if tuple(out) in arrays:
                out.append(str(arrays[tuple(out)]))
        return tuple(out)

    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            path = _split_key(header.group(2))
            if header.group(1) == "[[":
                parent = resolve(path[:-1]) + path[-1:]
                arrays[parent] = arrays.get(parent, -1) + 1
                current = (*parent, str(arrays[parent]))
            else:
                current = resolve(path)
            found.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key and not line.lstrip().startswith("#"):
            found.setdefault((*current, *_split_key(key.group(1))), number)
    return found


def locate_yaml(text: str) -> dict[tuple[str, ...], int]:
    """Every mapping key and sequence item of a YAML document; 1-based lines."""
    found: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return found

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                found.setdefault(child, key.start_mark.line + 1)
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, str(index))
                found.setdefault(child, item.start_mark.line + 1)
                walk(item, child)

    if root is not None:
        walk(root, ())
    return found
