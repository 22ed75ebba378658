"""Fixtures for the kernel layer.

* ``shell`` / ``ext``: an in-process :class:`~tests.helpers.shell.TestingShell` with nbsched
  loaded on an in-memory store and a fake clock -- for the fast parser and display tests.
* ``kernel``: one real kernel per test module and kernel generation (ipykernel 7 and 6),
  with nbsched loaded; ``kernel_factory`` (tests/conftest.py) starts more.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbsched import kernel as nbsched_kernel
from nbsched.testing import FakeClock
from tests.helpers.kernels import KERNELS, KernelHarness, Kernels
from tests.helpers.shell import OWNER, TestingShell


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestingShell]:
    ipdir = tmp_path_factory.mktemp("ipython")
    config = Config()
    config.HistoryManager.enabled = False
    config.NbschedConfig.db_url = "memory:"
    config.NbschedConfig.owner = OWNER
    config.NbschedConfig.timezone = "UTC"
    sh = TestingShell.instance(config=config, ipython_dir=str(ipdir))
    try:
        yield sh
    finally:
        nbsched_kernel.unload(sh)
        TestingShell.clear_instance()
        InteractiveShell.clear_instance()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def ext(shell: TestingShell, clock: FakeClock) -> Iterator[TestingShell]:
    """``shell`` with nbsched loaded (fresh in-memory store, fake clock) for one test."""
    # Defined through the shell, so they are notebook functions (``__main__``).
    shell.run_cell(
        "def f():\n    print('f ran')\n\ndef g(**kwargs):\n    print('g ran', kwargs)\n\nx = 42\n"
    )
    nbsched_kernel.load(shell, clock=clock)
    try:
        yield shell
    finally:
        nbsched_kernel.unload(shell)
        for name in ("f", "g", "x"):
            shell.user_ns.pop(name, None)


@pytest.fixture(scope="module", params=KERNELS)
def kernel(request: pytest.FixtureRequest, kernel_factory: Kernels) -> KernelHarness:
    """One kernel per module and kernel generation, with nbsched loaded."""
    harness = kernel_factory.start(request.param, notebook=f"{request.module.__name__}.ipynb")
    harness.run("%load_ext nbsched")
    return harness
