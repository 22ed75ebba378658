"""The public surface and the layering rules (STYLE §2, §4)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import nbsched


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in nbsched.__all__:
        obj = getattr(nbsched, name)
        if name == "__version__":
            assert isinstance(obj, str)
            continue
        assert (obj.__doc__ or "").strip(), f"nbsched.{name} has no docstring"


def test_core_imports_without_the_kernel_stack() -> None:
    """triggers, stores, scheduler and executors import nothing from IPython, traitlets,
    ipywidgets or nbclient; a plain ``import nbsched`` doesn't either."""
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
        s = nbsched.Scheduler(timezone="UTC")
        s.start(); s.add_job(print, "every 1h", name="p"); s.shutdown()
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
