"""`repro doctor`: each check's ok and FAIL (and skipped) path, with SLURM's commands faked on PATH."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from repro.cli import main
from repro.launch import doctor
from repro.launch.cluster import ClusterProfile, load_cluster_profile

GPU = ClusterProfile(name="site", partition="gpu", account="proj", qos="normal", nodes=2, gpus_per_node=8,
                     cpus_per_gpu=8, mem_per_gpu="64G", time="1-00:00:00")


def fake(bin_dir: Path, name: str, body: str) -> None:
    """An executable ``name`` on ``bin_dir`` running the sh script ``body``."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def path(tmp_path, monkeypatch):
    """PATH holding only the fakes a test writes to the returned directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_cluster_profile(tmp_path):
    check, profile = doctor.cluster_profile(lambda: load_cluster_profile("local"))
    assert check.status == "ok" and profile.name == "local" and "partition debug" in check.detail
    bad = tmp_path / "bad.yaml"
    bad.write_text("partition: gpu\n")
    check, profile = doctor.cluster_profile(lambda: load_cluster_profile(bad))
    assert (check.status, profile) == ("FAIL", None) and "time: Field required" in check.detail
    check, _ = doctor.cluster_profile(lambda: load_cluster_profile("example-a100"))
    assert check.status == "FAIL" and "template" in check.detail and "slurm/profiles/<site>.yaml" in check.fix


def test_sbatch_on_path(path):
    check = doctor.slurm_commands()
    assert check.status == "FAIL" and check.detail == "sbatch and srun not on PATH"
    fake(path, "sbatch", "exit 0")
    assert doctor.slurm_commands().detail == "srun not on PATH"
    fake(path, "srun", "exit 0")
    check = doctor.slurm_commands()
    assert check.status == "ok" and check.detail == str(path / "sbatch")


def test_partition(path):
    assert doctor.partition(GPU).status == "skipped"  # no sinfo
    # sinfo -h -p gpu -o %P|%D|%G|%l: one line per node state
    fake(path, "sinfo", 'case "$*" in *"-p gpu -o"*) echo "gpu*|3|gpu:a100:8(S:0-1)|2-00:00:00"; '
         'echo "gpu*|1|gpu:a100:8(S:0-1)|2-00:00:00";; *"-p "*) ;; *) echo "gpu*"; echo debug;; esac')
    check = doctor.partition(GPU)
    assert check.status == "ok" and check.detail == "gpu: 4 node(s), gres gpu:a100:8(S:0-1), time limit 2-00:00:00"
    check = doctor.partition(GPU.with_overrides(partition="gpu-long"))
    assert check.status == "FAIL" and check.detail == "no partition 'gpu-long' (sinfo knows: gpu, debug)"
    check = doctor.partition(GPU.with_overrides(time="3-00:00:00"))
    assert check.status == "FAIL" and "shorter than the profile's 4320 min" in check.detail
    check = doctor.partition(GPU.with_overrides(gpus_per_node=16, nodes=1))
    assert check.status == "FAIL" and "its nodes have 8 GPU(s), a run asks for 16 per node" in check.detail
    fake(path, "sinfo", "echo 'sinfo: error: Unable to contact slurm controller' >&2; exit 1")
    assert doctor.partition(GPU).status == "skipped"


def test_account(path):
    assert doctor.account(GPU).status == "skipped"  # no sacctmgr
    fake(path, "sacctmgr", 'case "$*" in *"user=alice format=account,qos"*) echo "proj|normal,long"; '
         'echo "other|normal";; *) exit 3;; esac')
    check = doctor.account(GPU, user="alice")
    assert check.status == "ok" and check.detail == "account proj, qos normal"
    check = doctor.account(GPU.with_overrides(account="my-project"), user="alice")
    assert check.status == "FAIL" and "'my-project' is not an account of user 'alice' (sacctmgr: other, proj)" \
        in check.detail
    check = doctor.account(GPU.with_overrides(qos="high"), user="alice")
    assert check.status == "FAIL" and "qos 'high' is not allowed for account 'proj'" in check.detail
    fake(path, "sacctmgr", "echo 'sacctmgr: error: Problem talking to the database' >&2; exit 1")
    check = doctor.account(GPU, user="alice")
    assert check.status == "skipped" and "Problem talking to the database" in check.detail


def test_data_roots(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.delenv("REPRO_DATA_IMAGENET_1K", raising=False)
    configs = [{"task": "in1k", "dataset": "imagenet-1k"}, {"task": "in1k", "dataset": "imagenet-1k"},
               {"task": "transfer", "dataset": "digits"}]
    missing, bundled = doctor.data(configs)
    assert missing.status == "FAIL" and missing.name == "data imagenet-1k"
    assert "2 run(s): data set 'imagenet-1k' not found" in missing.detail and "REPRO_DATA_IMAGENET_1K" in \
        missing.detail
    assert bundled.status == "ok" and bundled.detail == "1 run(s): bundled"
    (tmp_path / "imagenet-1k" / "train").mkdir(parents=True)
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    assert doctor.data(configs[:1])[0].status == "FAIL"  # train/ without val/
    (tmp_path / "imagenet-1k" / "val").mkdir()
    check = doctor.data(configs[:1])[0]
    assert check.status == "ok" and check.detail == f"1 run(s): {tmp_path / 'imagenet-1k'}"


def test_data_roots_of_other_layouts(tmp_path, monkeypatch):
    """IN-22K's synset folders and COCO's layout, found by their tasks; the COCO proxy needs Fashion-MNIST."""
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    checks = doctor.data([{"task": "in22k", "dataset": "imagenet-22k"}, {"task": "coco", "dataset": "coco"},
                          {"task": "coco", "dataset": "coco-proxy"}])
    assert [c.status for c in checks] == ["FAIL", "FAIL", "ok"]
    assert "one folder per synset" in checks[0].detail and "instances_" in checks[1].detail
    (tmp_path / "imagenet-22k" / "n01440764").mkdir(parents=True)
    assert doctor.data([{"task": "in22k", "dataset": "imagenet-22k"}])[0].status == "ok"


def test_runs_dir(tmp_path):
    check = doctor.runs_dir(tmp_path / "runs")
    assert check.status == "ok" and f"(to be created in {tmp_path})" in check.detail
    (tmp_path / "runs").mkdir()
    assert doctor.runs_dir(tmp_path / "runs").detail.endswith("(writable)")
    (tmp_path / "file").write_text("")
    check = doctor.runs_dir(tmp_path / "file" / "runs")
    assert check.status == "FAIL" and check.detail == f"{tmp_path / 'file'} is not a directory"


def test_packages(tmp_path):
    lock = tmp_path / "lock.txt"
    pydantic, yaml = metadata.version("pydantic"), metadata.version("pyyaml")
    lock.write_text(f"# a comment\npydantic=={pydantic} \\\n    --hash=sha256:00\n    # via repro\n"
                    f"PyYAML=={yaml} \\\n    --hash=sha256:00\n"
                    "colorama==0.0.1 ; sys_platform == 'never' \\\n    --hash=sha256:00\n")
    check = doctor.packages(lock)
    assert check.status == "ok" and check.detail.startswith("the 2 pins of lock.txt")
    lock.write_text(lock.read_text() + "pydantic-core==0.0.1 \\\n    --hash=sha256:00\nno-such-pkg==1.0\n")
    check = doctor.packages(lock)
    assert check.status == "FAIL" and check.fix == "make setup"
    assert (f"2 of 4 differ from lock.txt: no-such-pkg missing (lock 1.0), pydantic-core "
            f"{metadata.version('pydantic-core')} (lock 0.0.1)") == check.detail


def test_the_shipped_lock_matches_this_environment():
    """`make setup` installs requirements/lock.txt: the environment the tests run in passes its own check."""
    check = doctor.packages()
    assert check.status == "ok", check.detail


def test_doctor_command(path, tmp_path, monkeypatch, capsys):
    """One line per check, exit 1 when one fails; the same arguments as repro submit."""
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "imagenet-1k" / "train").mkdir(parents=True)
    (tmp_path / "data" / "imagenet-1k" / "val").mkdir()
    site = tmp_path / "site.yaml"
    site.write_text("partition: gpu\naccount: proj\nnodes: 4\ngpus_per_node: 8\ncpus_per_gpu: 8\nmem_per_gpu: 64G\n"
                    "time: '2-00:00:00'\n")
    for name in ("sbatch", "srun"):
        fake(path, name, "exit 0")
    fake(path, "sinfo", 'case "$*" in *"-p gpu -o"*) echo "gpu*|8|gpu:8|2-00:00:00";; esac')
    fake(path, "sacctmgr", 'echo "proj|normal"')
    monkeypatch.setenv("USER", "alice")
    args = ["doctor", "7", "--profile", "full", "--cluster-profile", str(site), "--runs", str(tmp_path / "runs")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["ok"] * 7
    assert [line.split()[1] for line in lines[:-1]] == ["cluster", "sbatch", "partition", "account", "data",
                                                       "runs", "packages"]
    assert lines[-1] == "7 checks: none failed"
    monkeypatch.delenv("REPRO_DATA")
    assert main([*args, "--set", "partition=cpu"]) == 1
    out = capsys.readouterr().out
    assert "FAIL     partition" in out and "FAIL     data imagenet-1k" in out
    assert out.splitlines()[-1] == "7 checks: 2 failed (partition, data imagenet-1k)"
    assert main(["doctor", "--profile", "full"]) == 1  # no site profile: the template is not taken silently
    assert "FAIL     cluster profile          --profile full needs your site's cluster profile" in \
        capsys.readouterr().out
