"""``nbsched run``'s progress (cells done / total): a bar on a terminal, plain lines
elsewhere. Driven here the way the runner drives it (``on_progress(done, total)``)."""

from __future__ import annotations

import io

import pytest

from nbsched._cli.run import _Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress: _Progress, total: int) -> None:
    for done in range(total + 1):
        progress(done, total)
    progress.close()


def test_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    drive(_Progress(stream, "report.ipynb"), 3)
    assert stream.getvalue().splitlines() == [
        f"nbsched run: report.ipynb: cell {n}/3 done" for n in (1, 2, 3)
    ]


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # (the test's stream has no size of its own)
    stream = Terminal()
    drive(_Progress(stream, "report.ipynb"), 3)
    text = stream.getvalue()
    assert "\r" in text  # redrawn in place
    assert "report.ipynb:   0%" in text and "report.ipynb: 100%" in text and "3/3" in text
    assert "cell 1/3 done" not in text


def test_output_is_written_around_the_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stream = Terminal()
    progress = _Progress(stream, "nb.ipynb")
    progress(0, 2)
    progress.output("hello from a cell\n")
    progress(2, 2)
    progress.close()
    assert capsys.readouterr().out == "hello from a cell\n"
