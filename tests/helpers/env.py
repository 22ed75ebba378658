"""The isolated Jupyter environment: HOME, the Jupyter directories and IPYTHONDIR under one
root, so that the user's own configuration, kernels and stores never leak into tests
(jupyter_server's ``jp_environ`` idea). The test process and the kernels it starts get the
same layout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DIRS", "isolated_dirs", "kernel_env"]

#: environment variable -> directory under the root
DIRS = {
    "HOME": "home",
    "JUPYTER_CONFIG_DIR": "jupyter_config",
    "JUPYTER_DATA_DIR": "jupyter_data",
    "JUPYTER_RUNTIME_DIR": "jupyter_runtime",
    "IPYTHONDIR": "ipython",
}


def isolated_dirs(root: Path) -> dict[str, str]:
    """The variables of :data:`DIRS` pointing under ``root`` (directories created), plus
    ``JUPYTER_PLATFORM_DIRS=1`` (the layout Jupyter will use by default)."""
    env = {}
    for var, sub in DIRS.items():
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def kernel_env(root: Path, notebook: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a kernel started under ``root``: ``base`` (default: this process's)
    without pytest's and nbsched's variables, the isolated directories, its own SQLite store
    (``root/store/nbsched.db``) and a notebook path (``root/work/<notebook>``, given as
    ``JPY_SESSION_NAME`` as jupyter_server does)."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith(("PYTEST_", "NBSCHED_"))}
    env.pop("JPY_PARENT_PID", None)  # the kernel must not watch this process as its parent
    env.update(isolated_dirs(root))
    (root / "store").mkdir(parents=True, exist_ok=True)
    (root / "work").mkdir(parents=True, exist_ok=True)
    env["NBSCHED_DB_URL"] = f"sqlite:///{root / 'store' / 'nbsched.db'}"
    env["JPY_SESSION_NAME"] = str(root / "work" / notebook)
    return env
