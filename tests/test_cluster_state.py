"""Parsers of the squeue/scontrol fallback, on output recorded from the local SLURM (Slurm 22.05); the behaviour
against a live controller is in test_slurm_state.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repro.launch import slurm_state
from repro.launch.slurm_state import base_state, is_terminal, parse_squeue

SQUEUE = """\
1|COMPLETED|vm|None
3_0|COMPLETED|vm|None
3_2|PENDING||Resources
4|FAILED|vm|NonZeroExitCode
2|CANCELLED|vm|None
garbage line
"""

SCONTROL = (
    "JobId=2 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901758 Nice=0 Account=(null) "
    "QOS=(null) JobState=CANCELLED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 "
    "ExitCode=0:15 RunTime=00:00:02 TimeLimit=365-00:00:00 Partition=debug NodeList=vm BatchHost=vm NumNodes=1 "
    "TRES=cpu=1,mem=512M,node=1,billing=1 Command=/tmp/a b.sh WorkDir=/tmp StdOut=/tmp/slurm-2.out Power="
)


def test_parse_squeue() -> None:
    info = parse_squeue(SQUEUE)
    assert set(info) == {"1", "3_0", "3_2", "4", "2"}
    assert info["3_2"] == {"JobID": "3_2", "State": "PENDING", "NodeList": "", "Reason": "Resources"}
    assert info["4"]["State"] == "FAILED"


def test_parse_scontrol(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert cmd == ["scontrol", "-o", "show", "job", "2"]
        return subprocess.CompletedProcess(cmd, 0, SCONTROL + "\n", "")

    monkeypatch.setattr(slurm_state.subprocess, "run", fake_run)
    info = slurm_state.scontrol_show_job("2")
    assert info["JobState"] == "CANCELLED" and info["Restarts"] == "0" and info["ExitCode"] == "0:15"
    assert info["TRES"] == "cpu=1,mem=512M,node=1,billing=1"
    assert info["Command"] == "/tmp/a b.sh" and info["Power"] == ""


@pytest.mark.parametrize(("state", "base", "terminal"), [
    ("CANCELLED by 0", "CANCELLED", True), ("COMPLETED", "COMPLETED", True), ("RUNNING", "RUNNING", False),
    ("REQUEUED", "REQUEUED", False), ("PREEMPTED", "PREEMPTED", False), ("", "UNKNOWN", False),
    ("PURGED", "PURGED", True), ("out_of_memory", "OUT_OF_MEMORY", True),
])
def test_states(state: str, base: str, terminal: bool) -> None:
    assert base_state(state) == base and is_terminal(state) == terminal


def test_controller_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=x\nSlurmctldHost=vm(127.0.0.1)\nSlurmctldPort=7000\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    assert slurm_state._controller_address() == ("127.0.0.1", 7000)
    conf.write_text("ControlMachine=head\n")
    assert slurm_state._controller_address() == ("head", 6817)
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    assert slurm_state._controller_address() is None


def test_closed_controller_port_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("SlurmctldHost=x(127.0.0.1)\nSlurmctldPort=1\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    why = slurm_state.controller_answers()
    assert why is not None and why.startswith("no slurmctld at 127.0.0.1:1")


def test_fallback_leaves_other_executors_alone(tmp_path: Path) -> None:
    import submitit

    local = submitit.AutoExecutor(folder=tmp_path, cluster="local")
    inner = type(local._executor)
    assert slurm_state.with_state_fallback(local) is local and type(local._executor) is inner
