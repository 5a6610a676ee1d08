"""`repro schedule`: Tables 5 and 6 as JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repro.cli import main


def schedule_json(capsys, *args: str) -> dict:
    assert main(["schedule", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_etpp_json_reproduces_table6(capsys):
    out = schedule_json(capsys, "etpp")
    assert out["name"] == "etpp" and out["final_size"] == 224 and out["equivalent_epochs"] == pytest.approx(200)
    rows = [(s["start"], s["end"], s["resolution"], s["m_start"], s["m_end"]) for s in out["stages"]]
    assert rows == [(0.0, 0.2, 96, 0.0, 1.8), (0.2, 0.6, 160, 1.8, 5.4), (0.6, 1.0, 224, 5.4, 9.0)]
    assert [round(s["epochs"], 2) for s in out["stages"]] == [217.78, 156.8, 80.0]


def test_et_json_reproduces_table5(capsys):
    out = schedule_json(capsys, "et")
    assert [(s["resolution"], round(s["epochs"], 6)) for s in out["stages"]] == [(160, 180), (192, 60), (224, 60)]
    assert out["stages"][0]["start"] == 0.0 and out["stages"][-1]["end"] == 1.0
    assert out["stages"][0]["end"] == pytest.approx(0.46875)  # 91.84 of 195.92 equivalent epochs


def test_options(capsys):
    out = schedule_json(capsys, "etpp", "--epochs", "100", "--final-size", "384")
    assert out["equivalent_epochs"] == pytest.approx(100)
    assert [s["resolution"] for s in out["stages"]] == [96, 240, 384]


def test_table_format(capsys):
    assert main(["schedule", "etpp"]) == 0
    text = capsys.readouterr().out
    assert "Table 6" in text and "200 equivalent epochs" in text and "60.0%-100.0%" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown schedule 'nope'"),
        (["etpp", "--final-size", "0"], "final size must be a positive"),
        (["etpp", "--final-size", "-3"], "final size must be a positive"),
        (["etpp", "--epochs", "0"], "epochs must be a positive"),
        (["et", "--final-size", "150"], "B=160, which does not fit the final size 150"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, args, message):
    assert main(["schedule", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_script_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "repro", "schedule", "etpp", "--epochs", "-1"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.startswith("repro schedule: error:")
