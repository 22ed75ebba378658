"""The public surface and the layering rules: what the core may import, and no cycles."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import nbsched
from tests.helpers.imports import find_cycle, import_graph

PACKAGE = Path(nbsched.__file__).resolve().parent


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in nbsched.__all__:
        obj = getattr(nbsched, name)
        if name == "__version__":
            assert isinstance(obj, str)
            continue
        assert (obj.__doc__ or "").strip(), f"nbsched.{name} has no docstring"


def test_core_imports_without_the_kernel_stack() -> None:
    """triggers, stores, scheduler and executors import nothing from IPython, traitlets,
    ipywidgets or nbclient; a plain ``import nbsched`` and the display layer don't either."""
    code = textwrap.dedent("""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"IPython", "traitlets", "ipywidgets", "nbclient",
                                          "ipykernel", "jupyter_client", "comm"}:
                    raise ImportError(f"core imported {name}")
        sys.meta_path.insert(0, Blocker())
        import nbsched
        import nbsched.scheduler, nbsched.triggers, nbsched.stores
        import nbsched.stores.memory, nbsched.stores.sqlalchemy
        import nbsched.executors.thread, nbsched.executors.process
        import nbsched.display  # shared with the command line: no kernel stack either
        s = nbsched.Scheduler(timezone="UTC")
        s.start(); s.add_job(print, "every 1h", name="p"); s.shutdown()
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_no_import_cycles_inside_nbsched() -> None:
    """Dependencies point one way: no module reaches itself again through its imports, be
    they at module level or inside functions (``if TYPE_CHECKING:`` ones never run)."""
    graph = import_graph(PACKAGE, "nbsched")
    assert "nbsched.kernel.magics" in graph and graph["nbsched.kernel.extension"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_function_level_imports_and_skips_type_checking(
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg.c"] == set() and graph["pkg.d"] == {"pkg.c"}
    assert set(find_cycle(graph) or []) == {"pkg.a", "pkg.sub.b"}


def test_display_imports_only_public_core_modules() -> None:
    graph = import_graph(PACKAGE, "nbsched")
    display = {m for m in graph if m.startswith("nbsched.display")}
    outside = {t for m in display for t in graph[m] if t not in display}
    assert outside, "the display layer shows jobs and runs: it imports nbsched.jobs"
    private = {t for t in outside if any(p.startswith("_") for p in t.split(".")[1:])}
    upper = {t for t in outside if t.split(".")[1] in ("kernel", "panel", "server", "cli")}
    assert not private and not upper, (private, upper)
