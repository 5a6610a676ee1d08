"""Issue 7, point 6 on the local SLURM: a manifest submitted as one array finishes, renders, and a second
submission submits nothing. The runner is the toy one (the engine plugs in through the same registry)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from repro.cli import main

pytestmark = pytest.mark.slurm
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def cluster(monkeypatch):
    from repro.launch.slurm_state import controller_answers, use_local_cluster_conf

    use_local_cluster_conf()
    problem = controller_answers()
    if problem:
        pytest.skip(f"local SLURM not up ({problem}); run slurm/local/up.sh or make test-slurm")
    monkeypatch.setenv("REPRO_RUNNERS", "in1k=toy_runner:run")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def test_manifest_array_finishes_renders_and_is_idempotent(cluster, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["submit", "7", "--profile", "smoke", "--only", "ResNet-50", "PVT-Tiny", "--runs", str(runs)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "submitted 4 as one array" in out
    deadline = time.time() + 120
    while time.time() < deadline:
        assert main(["status", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs", str(runs)]) == 0
        status = capsys.readouterr().out
        if "table 7 (smoke): 4 finished" in status:
            break
        assert "failed" not in status, status
        time.sleep(2)
    else:
        pytest.fail(f"runs did not finish in time:\n{status}")
    assert main(args) == 0
    assert "submitted 0 as one array" in capsys.readouterr().out
    assert main(["table", "7", "--runs", str(runs), "--out", str(tmp_path / "res"), "--no-plots"]) == 0
    md = (tmp_path / "res" / "table07.md").read_text()
    assert "78.8 / **90**" in md and "75.9 / **90.5**" in md
