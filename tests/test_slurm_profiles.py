"""The local cluster profile against the local SLURM: the controller accepts its sbatch script and a job submitted
through make_executor runs and reports its state without accounting."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from repro.launch import slurm_state
from repro.launch.cluster import ClusterProfile, load_cluster_profile, make_executor, sbatch_script
from repro.launch.slurm_state import FallbackSlurmJob, wait_done

slurm_state.use_local_cluster_conf()
_WHY_NOT = slurm_state.controller_answers()

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_WHY_NOT is not None, reason=f"no SLURM: {_WHY_NOT}"),
              pytest.mark.timeout(120)]


def test_controller_accepts_the_local_profile_script(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(sbatch_script(load_cluster_profile("local"), tmp_path / "%j"))
    proc = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "to start at" in proc.stderr


def test_controller_rejects_what_it_cannot_run(tmp_path: Path) -> None:
    """A GPU profile on the CPU-only local node: sbatch refuses at once, it does not queue forever."""
    script = tmp_path / "job.sh"
    gpu_profile = ClusterProfile(name="gpu", partition="debug", gpus_per_node=1, cpus_per_gpu=1, mem_per_gpu="1G",
                                 time=5)
    script.write_text(sbatch_script(gpu_profile, tmp_path / "%j"))
    proc = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "Requested node configuration is not available" in proc.stderr or "gres" in proc.stderr.lower(), \
        proc.stderr


def test_job_through_the_local_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FallbackSlurmJob, "_results_timeout_s", 2)
    executor = make_executor(load_cluster_profile("local", time="00:05:00"), tmp_path / "submitit",
                             job_name="repro-profile-test")
    job = executor.submit(math.factorial, 6)
    assert isinstance(job, FallbackSlurmJob)
    assert wait_done(job, timeout_s=60, poll_s=0.5) == "COMPLETED"
    assert job.result() == 720
    info = slurm_state.scontrol_show_job(job.job_id)
    assert info["JobName"] == "repro-profile-test" and info["Partition"] == "debug"
    assert info["TimeLimit"] == "00:05:00"
