"""Console tables: plain aligned text off a terminal (what logs and tests read), a rich table on one."""

from __future__ import annotations

import pytest

import repro.console
from repro.cli import main
from repro.console import aligned, print_table


def test_plain_columns_are_aligned() -> None:
    assert aligned(["run", "step"], [["a", "1/10"], ["long name", "10/10"]], "lr") == [
        "run         step", "a           1/10", "long name  10/10"]


def test_a_terminal_gets_a_rich_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    print_table(["state", "detail"], [["running", "job 7 [RUNNING]"]], "ll")
    assert capsys.readouterr().out == "state    detail\nrunning  job 7 [RUNNING]\n"
    monkeypatch.setattr(repro.console, "on_terminal", lambda: True)
    print_table(["state", "detail"], [["running", "job 7 [RUNNING]"]], "ll")
    out = capsys.readouterr().out
    assert "─" in out and "job 7 [RUNNING]" in out  # a rich table; brackets are text, not markup


@pytest.mark.parametrize(("argv", "cell"), [(["schedule", "etpp"], "60.0%-100.0%"),
                                            (["cost", "table3"], "DeiT-Small")])
def test_schedule_and_cost_tables_on_a_terminal(argv: list[str], cell: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    plain = capsys.readouterr().out
    monkeypatch.setattr(repro.console, "on_terminal", lambda: True)
    assert main(argv) == 0
    rich = capsys.readouterr().out
    assert cell in plain and cell in rich and "─" in rich and "─" not in plain
