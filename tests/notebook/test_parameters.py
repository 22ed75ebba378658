"""Parameters, papermill's way: parsing ``-p``, writing values as literals, where the cell goes,
and papermill itself as the oracle (same notebooks, same parameters, same injected cell and
outputs)."""

from __future__ import annotations

import ast
import logging
import math
from pathlib import Path
from typing import Any

import nbformat
import pytest
from papermill.translators import PythonTranslator

from nbsched.errors import InvalidArgumentError
from nbsched.runner import parse_parameter, run_notebook

VALUES: dict[str, Any] = {
    "day": 'mon "quoted" \'single\'\nsecond line\\ and a backslash\ttab é €',
    "n": -42,
    "ratio": 2.5e-07,
    "flag": True,
    "nothing": None,
    "items": [1, "two", [3.0, None], {"k": False}],
    "config": {"a": 1, "b": ["x", 'y"z'], "c": {"d": None}},
}


# -- parse_parameter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("day=mon", ("day", "mon")),
        ("n=5", ("n", 5)),
        ("x=2.5", ("x", 2.5)),
        ("flag=True", ("flag", True)),
        ("nothing=None", ("nothing", None)),
        ("xs=[1, 'a']", ("xs", [1, "a"])),
        ("d={'k': 1}", ("d", {"k": 1})),
        ("s='5'", ("s", "5")),
        ("date=2026-12-01", ("date", "2026-12-01")),  # not arithmetic
        ("zero=01", ("zero", "01")),
        ("empty=", ("empty", "")),
        ("eq=a=b", ("eq", "a=b")),
        ("spaced=hello world", ("spaced", "hello world")),
        ("nan=float('nan')", ("nan", "float('nan')")),  # a call is no literal
        ("s={1, 2}", ("s", "{1, 2}")),  # a set does not store as JSON
        (" key =7", ("key", 7)),
    ],
)
def test_parse_parameter(text: str, expected: tuple[str, Any]) -> None:
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["day", "=mon", "1x=2", "a-b=1", "class=1", "a b=1"])
def test_parse_parameter_refuses_bad_forms_in_one_line(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="KEY=VALUE") as info:
        parse_parameter(text)
    assert "\n" not in str(info.value)


# -- the injected cell, without a kernel -----------------------------------------------------


def _injected(nb: nbformat.NotebookNode) -> list[int]:
    tagged = ["injected-parameters" in c.metadata.get("tags", []) for c in nb.cells]
    return [i for i, is_tagged in enumerate(tagged) if is_tagged]


def test_the_cell_source_is_papermills_byte_for_byte() -> None:
    from nbsched._notebook.params import check_parameters

    assert check_parameters(VALUES) == PythonTranslator.codify(VALUES)
    odd = {"inf": math.inf, "minus": -math.inf, "nan": math.nan, "big": 10**30, "e": ""}
    assert check_parameters(odd) == PythonTranslator.codify(odd)


@pytest.mark.parametrize(
    "value",
    [*VALUES.values(), "'''", '"""', "\\", "\\'", '\\"', "\x00\x1f\x7f", "\U0001f600", "{x}",
     "__import__('os').system('echo pwned')", (1, "a"), (1,), (), {1, "a"}, set(), 0.1, -0.0],
)
def test_values_are_literals_that_read_back(value: Any) -> None:
    from nbsched._notebook.params import literal

    source = literal(value)
    assert ast.literal_eval(source) == value  # a string stays a string: never code


def test_values_that_are_no_literals_are_refused() -> None:
    from nbsched._notebook.params import check_parameters

    with pytest.raises(InvalidArgumentError, match="'when'.*datetime"):
        check_parameters({"when": __import__("datetime").datetime(2026, 1, 1)})
    with pytest.raises(InvalidArgumentError, match="not a Python variable name"):
        check_parameters({"not valid": 1})


def test_placement(nbs: Path, caplog: pytest.LogCaptureFixture) -> None:
    from nbsched._notebook.params import inject_parameters

    nb = nbformat.read(nbs / "params.ipynb", as_version=4)
    assert inject_parameters(nb, {"day": "tue"}) == []
    assert _injected(nb) == [2]  # right after the cell tagged parameters (index 1)
    inject_parameters(nb, {"day": "wed", "extra": 1})
    assert _injected(nb) == [2]  # replaced, not added
    assert "day = \"wed\"" in nb.cells[2].source

    plain = nbformat.read(nbs / "noparams.ipynb", as_version=4)
    with caplog.at_level(logging.WARNING, logger="nbsched"):
        warnings = inject_parameters(plain, {"day": "x"})
    assert _injected(plain) == [0]
    assert any("no cell tagged 'parameters'" in w for w in warnings)
    assert "no cell tagged 'parameters'" in caplog.text


def test_unknown_parameters_are_a_warning_not_an_error(nbs: Path) -> None:
    from nbsched._notebook.params import inject_parameters

    nb = nbformat.read(nbs / "params.ipynb", as_version=4)
    assert inject_parameters(nb, {"day": "x", "typo": 1}) == ["Passed unknown parameter: typo"]


# -- papermill as the oracle, with real kernels ----------------------------------------------


def _streams(nb: nbformat.NotebookNode) -> list[str]:
    """Per code cell, the text of its stream outputs."""
    return [
        "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
        for c in nb.cells
        if c.cell_type == "code"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("notebook", "parameters"),
    [
        ("params.ipynb", VALUES),
        ("params.ipynb", {"day": "", "n": 0, "items": [], "unknown_one": "kept"}),
        ("noparams.ipynb", {"day": "line1\nline2 \"q\""}),
    ],
)
def test_same_cell_and_outputs_as_papermill(
    nbs: Path, tmp_path: Path, notebook: str, parameters: dict[str, Any]
) -> None:
    import papermill

    source = nbs / notebook
    ours = run_notebook(source, parameters=parameters, output_path=tmp_path / "ours.ipynb")
    assert ours.status == "succeeded", ours.error
    papermill.execute_notebook(
        str(source), str(tmp_path / "pm.ipynb"), parameters=parameters, progress_bar=False,
        kernel_name="python3", cwd=str(nbs),
    )
    mine = nbformat.read(ours.output_path, as_version=4)
    theirs = nbformat.read(tmp_path / "pm.ipynb", as_version=4)
    [i] = _injected(mine)
    [j] = _injected(theirs)
    assert i == j
    assert mine.cells[i].source == theirs.cells[j].source
    assert _streams(mine) == _streams(theirs)
    assert ours.output == "".join(_streams(mine))
