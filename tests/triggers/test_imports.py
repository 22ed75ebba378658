"""The triggers are core: standard library, cronsim, cron-descriptor and tzlocal only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbsched.triggers

PACKAGE = Path(nbsched.triggers.__file__).parent
THIRD_PARTY = {"cronsim", "cron_descriptor", "tzlocal"}
#: the core modules of nbsched a trigger may use (never the kernel or UI layers)
CORE = {"abc", "errors", "_marshal", "jobs", "_clock"}


def test_modules_import_only_the_allowed_packages() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                top = (node.module or "").split(".")[0]
                assert top in CORE, f"{path.name} imports nbsched.{top}"
                continue
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert (
                    top in sys.stdlib_module_names or top in THIRD_PARTY or top == "__future__"
                ), f"{path.name} imports {name}"


def test_imports_without_the_kernel_stack_or_croniter() -> None:
    blocked = ["IPython", "traitlets", "ipywidgets", "nbclient", "croniter", "dateutil"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from nbsched.triggers import parse_trigger\n"
        "assert parse_trigger('every weekday at 9:30', timezone='UTC').describe()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
