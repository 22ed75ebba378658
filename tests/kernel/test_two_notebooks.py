"""Real kernels of two notebooks on one store: each reads and changes the other's jobs, the
owner picks changes up through the store; every line of a cell answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.kernels import KERNELS, KernelHarness, Kernels
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(
    kernel_factory: Kernels, tmp_path_factory: pytest.TempPathFactory
) -> tuple[KernelHarness, KernelHarness]:
    """Kernels of notebooks a.ipynb and b.ipynb sharing one root, so one store."""
    root = tmp_path_factory.mktemp("two-notebooks")
    a = kernel_factory.start("ipk7", notebook="a.ipynb", root=root)
    b = kernel_factory.start("ipk7", notebook="b.ipynb", root=root)
    for k in (a, b):
        k.run("%load_ext nbsched")
    return a, b


def test_another_kernel_reads_pauses_and_resumes_a_job(
    pair: tuple[KernelHarness, KernelHarness],
) -> None:
    a, b = pair
    a.run("%%schedule --every 1h --name tick\nprint('tick ran')\n")
    a.run("%schedule run tick")
    owner_a = a.owner

    # (kernel A writes its runs to the store in the background)
    wait_for(
        lambda: "tick ran" in b.run("%schedule logs tick").text,
        10,
        "kernel B reads the run of kernel A's job",
    )
    assert owner_a in b.run("%schedule show tick").text
    assert "tick" in b.run("%schedule list --all").text

    answer = b.run("%schedule pause tick").text
    assert f"Paused 'tick' (a job of notebook {owner_a}; its kernel picks the change up" in answer
    a.wait_until(
        "nbsched.kernel.current().get_job('tick').paused",
        timeout=10,
        what="kernel A sees its job paused by kernel B",
    )
    b.run("%schedule resume tick")
    a.wait_until(
        "not nbsched.kernel.current().get_job('tick').paused",
        timeout=10,
        what="kernel A sees its job resumed by kernel B",
    )


def test_adopt_moves_a_job_to_the_other_notebook(
    pair: tuple[KernelHarness, KernelHarness],
) -> None:
    a, b = pair
    a.run("def fetch():\n    print('fetched')\n")
    a.run("%schedule add fetch --every 1h")
    # A looks at the store once after its own write: a write by another process landing
    # before A has looked at its own is taken up only at A's next periodic look (minutes
    # when the store is watched), which is the engine's business, not what this tests
    a.run("import nbsched.kernel\nnbsched.kernel.current().refresh_from_store()")
    b.run("def fetch():\n    print('fetched in b')\n")

    answer = b.run("%schedule adopt fetch").text
    assert f"Adopted job 'fetch' from notebook {a.owner}" in answer
    assert b.eval("nbsched.kernel.current().get_job('fetch').owner") == b.owner
    a.wait_until(
        "'fetch' not in [j.name for j in nbsched.kernel.current().get_jobs()]",
        timeout=10,
        what="kernel A drops the job kernel B adopted",
    )
    assert "fetched in b" in b.run("%schedule run fetch").text


@pytest.mark.parametrize("kind", KERNELS)
def test_every_line_of_a_cell_answers(kernel_factory: Kernels, kind: str) -> None:
    k = kernel_factory.start(kind, notebook="lines.ipynb")
    k.run("%load_ext nbsched\ndef f():\n    pass\n")
    res = k.run(
        "%schedule add f --every 5m\n"
        "%schedule add f --every 1h --name second\n"
        "%schedule pause second\n"
    )
    assert len(res.data) == 3, res.data
    assert "Added job 'f'" in res.data[0]
    assert "Added job 'second'" in res.data[1]
    assert "Paused job 'second'" in res.data[2]


def test_a_kernel_that_cannot_name_its_notebook_says_so(
    kernel_factory: Kernels, tmp_path: Path
) -> None:
    k = kernel_factory.start("ipk7", root=tmp_path, env={"JPY_SESSION_NAME": ""})
    res = k.run("%load_ext nbsched")
    notice = [ln for ln in res.text.splitlines() if "which notebook" in ln]
    assert len(notice) == 1 and "belong to this kernel only" in notice[0]
    owner = k.eval("nbsched.kernel.loaded().owner")
    assert owner in notice[0]


def test_a_killed_kernels_jobs_are_not_stranded(kernel_factory: Kernels, tmp_path: Path) -> None:
    a = kernel_factory.start("ipk7", notebook="s.ipynb", root=tmp_path)
    b = kernel_factory.start("ipk7", notebook="watcher.ipynb", root=tmp_path)
    a.run("%load_ext nbsched")
    a.run("%%schedule --every 1s --name slow\nimport time\ntime.sleep(60)\n")
    b.run("%load_ext nbsched")
    # another notebook sees the run in flight, and since when
    wait_for(
        lambda: "running (since" in b.run("%schedule list --all").text,
        15,
        "kernel B shows kernel A's run as running",
    )
    a.kill()
    wait_for(lambda: not a.km.is_alive(), 10, "kernel A is dead")

    again = kernel_factory.start("ipk7", notebook="s.ipynb", root=tmp_path)
    again.run("%load_ext nbsched")
    assert again.eval("[j.name for j in nbsched.kernel.current().get_jobs()]") == ["slow"]
    statuses = again.eval("[r.status.value for r in nbsched.kernel.current().get_runs('slow')]")
    assert statuses[-1] == "crashed", statuses
    assert "running" not in statuses[1:], statuses


@pytest.mark.parametrize("kind", KERNELS)
def test_another_cell_does_not_replace_a_job(kernel_factory: Kernels, kind: str) -> None:
    k = kernel_factory.start(kind, notebook="cells.ipynb")
    k.run("%load_ext nbsched\ndef f(x=0):\n    pass\n")
    k.run("%schedule add f --every 3s -p x=5", cell_id="cell-a")
    res = k.run('%schedule add f "every weekday at 9:30"', cell_id="cell-b", check=False)
    assert res.ename == "UsageError" and "--replace" in res.evalue, res.error
    assert k.eval("dict(nbsched.kernel.current().get_job('f').kwargs)") == {"x": 5}
    res = k.run("%schedule add f --every 10s -p x=5", cell_id="cell-a")
    assert "Updated job 'f': schedule: Every 3 seconds → Every 10 seconds" in res.text
    res = k.run('%schedule add f "every weekday at 9:30" --replace', cell_id="cell-b")
    assert "Replaced job 'f'" in res.text and "parameters: x=5 → none" in res.text
