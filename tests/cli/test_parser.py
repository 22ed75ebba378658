"""The program itself: one program under two names, help with examples everywhere, bad
arguments in one line with exit status 2, and where the store is by default."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import pytest

import nbsched
from nbsched import Scheduler
from nbsched.cli import main
from nbsched.kernel.config import NbschedConfig

from .helpers import REPO, Result, program_env, snapshot

COMMANDS = ["run", "add", "list", "runs", "logs", "pause", "resume", "remove", "serve"]


def test_the_nbsched_script_is_cli_main() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["nbsched"].partition(":")
    assert getattr(import_module(module), attr) is main


@pytest.mark.slow
def test_python_m_nbsched_is_the_same_program(program: Callable[..., Result]) -> None:
    version = program("--version")
    assert (version.code, version.out.strip()) == (0, f"nbsched {nbsched.__version__}")
    bad = program("list", "--nope")
    assert bad.code == 2 and bad.err_lines == [
        "nbsched list: error: unrecognized arguments: --nope (see `nbsched list --help`)"
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(
    command: str, cli: Callable[..., Result]
) -> None:
    result = cli(command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: nbsched {command}")
    examples = result.out.split("examples:\n", 1)[1]
    assert f"  nbsched {command}" in examples


def test_top_level_help_lists_every_command(cli: Callable[..., Result]) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in COMMANDS:
        assert f"\n    {command} " in result.out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["list", "--nope"],
        ["run"],
        ["run", "x.ipynb", "--timeout", "-1"],
        ["run", "x.ipynb", "--timeout", "soon"],
        ["add", "x.ipynb"],
        ["add", "x.ipynb", "every 1h", "--timeout", "0"],
        ["runs", "--limit", "0"],
        ["logs"],
        ["pause"],
        ["serve", "--give-up-after", "nan"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], cli: Callable[..., Result], db_url: str
) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("nbsched")
    assert "error: " in result.err_lines[0]
    assert not Path(db_url.removeprefix("sqlite:///")).exists()  # no store was touched


def test_in_memory_store_is_refused(cli: Callable[..., Result]) -> None:
    result = cli("list", "--db", "memory:")
    assert result.code == 2
    assert result.err_lines == [
        "nbsched list: error: the store 'memory:' keeps jobs inside one process only; pass "
        "--db with a database URL such as sqlite:////path/to/nbsched.db"
    ]


def test_unreachable_store_is_one_line_exit_1(cli: Callable[..., Result]) -> None:
    result = cli("list", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert result.code == 1
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("nbsched list: error: Job store postgresql")


def test_a_bad_url_is_a_bad_argument(cli: Callable[..., Result]) -> None:
    result = cli("list", "--db", "nosuchdialect://x")
    assert result.code == 2
    assert result.err_lines[0].startswith("nbsched list: error: Cannot use 'nosuchdialect://x'")


# -- which store ------------------------------------------------------------------------------


def _add(url: str, name: str) -> None:
    s = Scheduler(url)
    s.add_job("os:getpid", "every 1h", name=name)
    s.store.close()


def test_default_store_is_the_one_kernels_use(
    cli: Callable[..., Result], jupyter_env: Path
) -> None:
    kernel_url = NbschedConfig().effective_db_url()
    assert kernel_url is not None
    assert Path(kernel_url.removeprefix("sqlite:///")).is_relative_to(jupyter_env)
    _add(kernel_url, "from-a-kernel")
    result = cli("list")
    assert result.code == 0, result.err
    assert "from-a-kernel" in result.out


def test_nbsched_db_url_is_the_default_and_db_wins_over_it(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    flag_url = f"sqlite:///{tmp_path / 'flag.db'}"
    _add(env_url, "in-env-store")
    _add(flag_url, "in-flag-store")
    monkeypatch.setenv("NBSCHED_DB_URL", env_url)
    assert NbschedConfig().effective_db_url() == env_url
    listed = cli("list").out
    assert "in-env-store" in listed and "in-flag-store" not in listed
    listed = cli("list", "--db", flag_url).out
    assert "in-flag-store" in listed and "in-env-store" not in listed


# -- add: what can be checked without the notebook runner ------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["every blah"], 2, "nbsched add: error: Cannot understand schedule 'every blah'"),
        (["every 1h", "--tz", "Mars/Base"], 2, "nbsched add: error: Unknown time zone"),
        (["every 1h"], 1, "nbsched add: error: no notebook at "),
    ],
)
def test_add_rejects_before_storing_anything(
    argv: list[str], code: int, message: str, cli: Callable[..., Result], db_url: str,
    tmp_path: Path,
) -> None:
    _add(db_url, "existing")
    before = snapshot(db_url)
    result = cli("add", str(tmp_path / "missing.ipynb"), *argv, "--db", db_url)
    assert result.code == code
    assert len(result.err_lines) == 1 and result.err_lines[0].startswith(message)
    assert snapshot(db_url) == before


@pytest.mark.parametrize(
    "command", [["add", "{script}", "every 1h", "--db", "{db}"], ["run", "{script}"]]
)
def test_add_and_run_want_a_notebook(
    command: list[str], cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    result = cli(*[arg.format(script=script, db=db_url) for arg in command])
    assert result.code == 2
    assert result.err_lines == [
        f"nbsched {command[0]}: error: {str(script)!r} is not a notebook (a .ipynb file)"
    ]


def test_main_uses_sys_argv_by_default(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setattr(sys, "argv", ["nbsched", "--version"])
    assert main() == 0


def test_run_of_a_missing_notebook_is_one_line_exit_1(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    missing = str(tmp_path / "nope.ipynb")
    result = cli("run", missing)
    assert (result.code, result.out) == (1, "")
    assert result.err_lines == [f"nbsched run: error: no notebook at {missing!r}"]


@pytest.mark.slow
def test_the_program_loads_the_notebook_runner_only_to_run_notebooks() -> None:
    code = (
        "import sys, nbsched.cli\n"
        "print(sorted(m for m in ('nbsched.runner', 'nbclient') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=program_env(),
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
