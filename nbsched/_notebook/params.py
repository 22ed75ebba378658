"""Parameters, papermill's way: values become Python literals in a cell tagged
``injected-parameters``, inserted right after the cell tagged ``parameters``.

Values are written the way papermill's Python translator writes them (so a notebook run by
papermill and by nbsched gets the same cell, byte for byte, for JSON-like values): strings as
double-quoted literals with every special character escaped, numbers as their ``repr``
(``float('nan')`` and the infinities spelled out), lists and dicts recursively. Every value is
a *literal*: a string parameter can never turn into code. Tuples and sets, which papermill
turns into strings, are written as tuple and set literals; anything else is refused.
"""

from __future__ import annotations

import keyword
import logging
import math
from collections.abc import Mapping
from typing import Any

import nbformat

from ..errors import InvalidArgumentError

__all__ = ["check_parameters", "inject_parameters", "literal"]

log = logging.getLogger("nbsched")

_nbf: Any = nbformat  # (untyped)

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def literal(value: Any) -> str:
    """``value`` as Python source that evaluates back to it (see the module docstring).

    :raises InvalidArgumentError: the value is not made of str, int, float, bool, None, list,
        tuple, set and dict
    """
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, str):
        # papermill's translate_escaped_str: unicode_escape escapes backslashes, newlines,
        # control and non-ASCII characters; the double quote is the one character left
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', r"\"") + '"'
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        if math.isnan(value):
            return "float('nan')"
        return "float('-inf')" if value < 0 else "float('inf')"
    if isinstance(value, list):
        return "[" + ", ".join(map(literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(map(literal, value))
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(map(literal, value)) + "}" if value else "set()"
    raise InvalidArgumentError(
        f"A parameter value of type {type(value).__name__} cannot be written as a Python "
        "literal; use str, int, float, bool, None, list, tuple or dict"
    )


def check_parameters(parameters: Mapping[str, Any]) -> str:
    """The source of the injected cell for ``parameters`` (checked: names are Python names,
    values literals).

    :raises InvalidArgumentError: a bad name or value (the message names the parameter)
    """
    lines = ["# Parameters"]
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidArgumentError(
                f"Parameter name {name!r} is not a Python variable name"
            )
        try:
            lines.append(f"{name} = {literal(value)}")
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"Parameter {name!r}: {exc}") from None
    return "\n".join(lines) + "\n"


def _tagged(nb: nbformat.NotebookNode, tag: str) -> int:
    for i, cell in enumerate(nb.cells):
        if tag in cell.get("metadata", {}).get("tags", []):
            return i
    return -1


def declared_names(nb: nbformat.NotebookNode) -> set[str] | None:
    """Names assigned in the ``parameters`` cell, ``None`` if there is no such cell (or it
    does not parse)."""
    import ast

    index = _tagged(nb, PARAMETERS_TAG)
    if index < 0:
        return None
    try:
        tree = ast.parse(nb.cells[index].source)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
    return names


def inject_parameters(
    nb: nbformat.NotebookNode, parameters: Mapping[str, Any]
) -> list[str]:
    """Insert (or replace) the injected-parameters cell in ``nb``, in place.

    :returns: warnings for the user (no ``parameters`` cell; parameters it does not declare)
    """
    source = check_parameters(parameters)
    warnings: list[str] = []
    cell: Any = _nbf.v4.new_code_cell(source=source)
    cell.metadata["tags"] = [INJECTED_TAG]
    injected, declared = _tagged(nb, INJECTED_TAG), _tagged(nb, PARAMETERS_TAG)
    if injected >= 0:
        nb.cells[injected] = cell
    elif declared >= 0:
        nb.cells.insert(declared + 1, cell)
    else:
        nb.cells.insert(0, cell)
        warnings.append(
            "The notebook has no cell tagged 'parameters': the parameters were injected at "
            "the top"
        )
    names = declared_names(nb)
    if names is not None:
        for name in parameters:
            if name not in names:
                # papermill's behaviour too: a warning, the value is injected all the same
                warnings.append(f"Passed unknown parameter: {name}")
    for warning in warnings:
        log.warning("nbsched: %s", warning)
    return warnings
