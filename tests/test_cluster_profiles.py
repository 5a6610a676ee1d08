"""Cluster profiles (slurm/profiles/*.yaml): every shipped profile loads, round-trips, maps to the submitit
parameters and sbatch flags a site expects; bad profiles fail with one line naming file, field and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.errors import UserError
from repro.launch.cluster import (
    ClusterProfile,
    available_profiles,
    dependency,
    dump_cluster_profile,
    executor_parameters,
    load_cluster_profile,
    make_executor,
    parse_mem_gb,
    parse_time_min,
    sbatch_script,
    submission_script,
)


def test_shipped_profiles() -> None:
    assert {"local", "example-a100"} <= set(available_profiles())


@pytest.mark.parametrize("name", available_profiles())
def test_round_trip(name: str, tmp_path: Path) -> None:
    profile = load_cluster_profile(name)
    copy = tmp_path / f"{name}.yaml"
    copy.write_text(dump_cluster_profile(profile))
    assert load_cluster_profile(copy) == profile


def test_gpu_profile_maps_to_one_task_per_gpu() -> None:
    p = load_cluster_profile("example-a100")
    assert (p.nodes, p.gpus_per_node, p.gpus, p.time, p.mem_per_gpu) == (4, 8, 32, 2 * 24 * 60, 100.0)
    params = executor_parameters(p, job_name="t7-resnet50-etpp")
    assert params == {
        "timeout_min": 2880, "nodes": 4, "tasks_per_node": 8, "cpus_per_task": 10, "gpus_per_node": 8,
        "mem_gb": 800.0, "name": "t7-resnet50-etpp", "slurm_partition": "gpu", "slurm_account": "my-project",
        "slurm_qos": "normal", "slurm_constraint": "a100-80gb", "slurm_signal_delay_s": 180,
        "slurm_setup": ["export OMP_NUM_THREADS=1"],
    }
    script = sbatch_script(p, "/runs/submitit/%j", job_name="t7")
    for flag in ("--account=my-project", "--constraint=a100-80gb", "--cpus-per-task=10", "--gpus-per-node=8",
                 "--mem=800GB", "--nodes=4", "--ntasks-per-node=8", "--partition=gpu", "--qos=normal",
                 "--signal=USR2@180", "--time=2880", "--job-name=t7"):
        assert f"#SBATCH {flag}\n" in script
    assert "export OMP_NUM_THREADS=1" in script


def test_submission_script_is_submitits(tmp_path: Path) -> None:
    """A job array's script carries submitit's array line and its %A_%a log paths; a dependency lasts for the
    submissions inside ``dependency`` only (submitit ignores ``None``, so it could not be unset)."""
    executor = make_executor(load_cluster_profile("example-a100"), tmp_path / "submitit", "t07-full", plan_only=True)
    one, array = submission_script(executor), submission_script(executor, 5)
    assert "--array" not in one and f"#SBATCH --output={tmp_path}/submitit/%j_0_log.out\n" in one
    assert "#SBATCH --array=0-4%5\n" in array and f"#SBATCH --output={tmp_path}/submitit/%A_%a_0_log.out\n" in array
    assert array.replace("#SBATCH --array=0-4%5\n", "").replace("%A_%a", "%j") == one
    assert one.rstrip().endswith(f"-u -m submitit.core._submit {tmp_path}/submitit")
    with dependency(executor, "afterok:42"):
        assert "#SBATCH --dependency=afterok:42\n" in submission_script(executor)
    assert submission_script(executor) == one
    assert not (tmp_path / "submitit").exists()  # planning writes nothing


def test_speed_vs_3090() -> None:
    assert load_cluster_profile("example-a100").speed_vs_3090 == 1.0
    with pytest.raises(UserError, match="speed_vs_3090: Input should be greater than 0"):
        load_cluster_profile("example-a100", speed_vs_3090=0)


def test_cpu_profile() -> None:
    p = load_cluster_profile("local")
    params = executor_parameters(p)
    assert params["tasks_per_node"] == 1 and params["cpus_per_task"] == 1 and params["mem_gb"] == 1.0
    assert "gpus_per_node" not in params and params["slurm_partition"] == "debug"


def test_overrides_are_validated() -> None:
    p = load_cluster_profile("example-a100", partition="gpu-long", time="3-00:00:00", qos=None)
    assert (p.partition, p.time, p.qos) == ("gpu-long", 3 * 24 * 60, "normal")
    assert p.with_overrides(nodes=1).gpus == 8
    with pytest.raises(UserError, match=r"^command line overrides of cluster profile 'example-a100': nodes: "
                                        r"Input should be greater than or equal to 1 \(got 0\)$"):
        p.with_overrides(nodes=0)
    with pytest.raises(UserError, match="gpus: unknown field"):
        p.with_overrides(gpus=8)


def test_local_executor_profile_has_no_slurm_parameters() -> None:
    p = load_cluster_profile("local").with_overrides(executor="local")
    assert not [k for k in executor_parameters(p) if k.startswith("slurm_")]
    with pytest.raises(UserError, match="has no sbatch script"):
        sbatch_script(p, "/tmp")


@pytest.mark.parametrize(("text", "message"), [
    ("partition: gpu\n", r"bad\.yaml: time: Field required"),
    ("time: 10\ngpus: 8\n", r"bad\.yaml: gpus: unknown field; expected one of: description, executor, "),
    ("time: 1:xx\n", r"bad\.yaml: time: expected a SLURM time like '2-00:00:00', 'HH:MM:SS' or minutes, "
                     r"got '1:xx'"),
    ("time: 10\ngpus_per_node: 8\ncpus_per_gpu: 4\n", r"bad\.yaml: profile: a GPU profile \(gpus_per_node: 8\) "
                                                      r"needs mem_per_gpu$"),
    ("time: 10\ngpus_per_node: 8\ncpus_per_gpu: 4\nmem_per_gpu: 10G\nmem: 80G\n",
     r"a GPU profile sets resources per GPU: use cpus_per_gpu/mem_per_gpu, not mem"),
    ("time: 10\nmem_per_gpu: 10G\n", r"mem_per_gpu need gpus_per_node > 0"),
    ("time: 10\nnodes: 2\n", r"multi-node runs need GPUs"),
    ("time: 10\nmem: lots\n", r"bad\.yaml: mem: expected memory like '64G' or '500M', got 'lots'"),
    ("time: 10\nexecutor: pbs\n", r"bad\.yaml: executor: Input should be 'slurm' or 'local' \(got 'pbs'\)"),
    ("time: 10\ngpus_per_node: -1\n", r"gpus_per_node: Input should be greater than or equal to 0"),
    ("time: 10\nname: x\n", r"bad\.yaml: name: the profile's name is its file name \('bad'\); remove the field"),
    ("- time: 10\n", r"bad\.yaml: a cluster profile must be a YAML mapping, got list"),
    ("time: [10\n", r"bad\.yaml: not valid YAML at line 2"),
])
def test_bad_profile_is_one_line(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        load_cluster_profile(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_profile_lists_the_available_ones() -> None:
    with pytest.raises(UserError, match=r"no-such\.yaml: no such cluster profile; available: .*example-a100.*local"):
        load_cluster_profile("no-such")


@pytest.mark.parametrize(("value", "minutes"), [
    (90, 90), (0.5, 1), ("45", 45), ("10:30", 11), ("01:00:00", 60), ("2-00", 2880), ("1-12:30", 2190),
    ("2-00:00:01", 2881),
])
def test_parse_time(value: int | float | str, minutes: int) -> None:
    assert parse_time_min(value) == minutes


@pytest.mark.parametrize("value", ["", "1:2:3:4", "-5", 0, "00:00:00", True])
def test_parse_time_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time_min(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "gb"), [("64G", 64), ("64GB", 64), ("512M", 0.5), ("1T", 1024), (2, 2),
                                           ("1.5g", 1.5)])
def test_parse_mem(value: int | str, gb: float) -> None:
    assert parse_mem_gb(value) == gb


def test_profile_model_is_frozen() -> None:
    p = ClusterProfile(time=10)
    with pytest.raises(ValueError):
        p.nodes = 2  # type: ignore[misc]


@pytest.mark.parametrize("name", available_profiles())
def test_flags_named_in_a_profile_exist(name: str) -> None:
    """The profiles' comments name `repro submit` flags; each is one (a template once named --partition)."""
    import re

    from repro.cli import build_parser
    from repro.launch.cluster import PROFILES_DIR

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    flags = {o for action in sub.choices["submit"]._actions for o in action.option_strings}
    comments = "\n".join(line for line in (PROFILES_DIR / f"{name}.yaml").read_text().splitlines()
                         if line.lstrip().startswith("#"))
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", comments))
    assert named <= flags, named - flags
