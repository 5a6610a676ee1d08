"""Run directories probed as an adversarial user would: broken summaries are holes with a reason and are trained
again, a path nobody can train is reported, a concurrent start is refused with the holder's name, and the
launchers, the SLURM status and the aggregator agree on every run's state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import toy_runner

from repro.cli import main
from repro.launch import job as job_mod
from repro.launch import local
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.launch.rundir import LOCK_FILE, RunDir, RunDirBusy, RunLock, atomic_write, write_json_atomic
from repro.results.collect import collect_runs, read_run, reproduce
from repro.train import checkpoint as ckpt
from repro.train.config import TrainConfig
from repro.train.engine import train

TINY = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=64,
            max_val_images=32, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, log_every_steps=1,
            crop_scale=(0.35, 1.0), eval_every_epochs=1.0, seed=3, method="efficienttrain++", epochs=2)
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- run directories: one state, everywhere -------------------------------------------------------------------------


def _summary(text: str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        d.mkdir(parents=True)
        (d / "summary.json").write_text(text)
    return make


def _summary_dir(d: Path) -> None:
    (d / "summary.json").mkdir(parents=True)


def _a_file(d: Path) -> None:
    d.parent.mkdir(parents=True, exist_ok=True)
    d.write_text("not a run\n")


def _only_lock(d: Path) -> None:
    d.mkdir(parents=True)
    (d / LOCK_FILE).write_text("")


# case -> (make it, state, blocked, part of the detail)
RUNDIR_CASES: dict[str, tuple[Callable[[Path], None], str, bool, str]] = {
    "finished": (_summary('{"top1": 90.0}'), "finished", False, ""),
    "summary is a directory": (_summary_dir, "corrupt", True, "a directory, not a summary; move it away"),
    "run path is a file": (_a_file, "corrupt", True, "a file, not a run directory; move it away"),
    "summary []": (_summary("[]"), "corrupt", False, "not a JSON object"),
    "summary {}": (_summary("{}"), "corrupt", False, "no top1"),
    "top1 NaN": (_summary('{"top1": NaN}'), "corrupt", False, "top1 nan is not a finite number"),
    "top1 'abc'": (_summary('{"top1": "abc"}'), "corrupt", False, "top1 'abc' is not a finite number"),
    "top1 true": (_summary('{"top1": true}'), "corrupt", False, "top1 True is not a finite number"),
    "torn summary": (_summary('{"top1": 9'), "corrupt", False, "not valid JSON"),
    "Latin-1 byte": (lambda d: (d.mkdir(parents=True), (d / "summary.json").write_bytes(b'{"top1": "\xe9"}')),
                     "corrupt", False, "unreadable (UnicodeDecodeError)"),
    "only a lock file": (_only_lock, "new", False, ""),
    "metrics only": (lambda d: (d.mkdir(parents=True), (d / "metrics.jsonl").write_text("{}\n")),
                     "partial", False, ""),
}
COLLECT_STATUS = {"new": "missing"}


@pytest.mark.parametrize("case", list(RUNDIR_CASES))
def test_every_view_of_a_run_directory_agrees(case, tmp_path, recwarn):
    make, state, blocked, detail = RUNDIR_CASES[case]
    d = tmp_path / "runs" / "r"
    make(d)
    info = RunDir(d).info()
    assert (info.state, info.blocked) == (state, blocked) and detail in info.detail
    assert read_run(d)["status"] == COLLECT_STATUS.get(state, state)
    status = job_mod.run_status(d, scheduler={})
    assert status.state == ("finished" if state == "finished" else "pending")


@pytest.fixture
def table7_dirs(tmp_path, monkeypatch):
    """One Table 7 run directory per case above (ResNet-50 baseline: finished), the toy runner registered."""
    monkeypatch.setitem(local.RUNNERS, "in1k", "toy_runner:run")
    toy_runner.CALLS.clear()
    runs = [r for r in resolve(load_manifest(manifest_path(7)), "smoke")  # toy_runner fails these on purpose
            if r.config["model"] not in ("DeiT-Tiny", "CSWin-Tiny", "Swin-Tiny")]
    by_case = dict(zip(RUNDIR_CASES, dict.fromkeys(r.run_id for r in runs), strict=False))
    root = tmp_path / "runs"
    for case, run_id in by_case.items():
        RUNDIR_CASES[case][0](root / run_id)
    wanted = [r for r in runs if r.run_id in set(by_case.values())]
    return root, by_case, wanted


def test_table_and_compare_make_holes_with_reasons(table7_dirs, tmp_path, capsys):
    root, by_case, _ = table7_dirs
    assert main(["table", "7", "--runs", str(root), "--out", str(tmp_path / "res"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "top1 'abc' is not a finite number; the run is counted as corrupt" in out
    assert "a directory, not a summary" in out and "Traceback" not in out
    assert main(["compare", "--table", "7", "--runs", str(root)]) in (0, 1)
    with pytest.warns(UserWarning):
        frame = reproduce(load_manifest(manifest_path(7)), "smoke", collect_runs(root))
    top1 = frame[frame["column"].isin(["baseline_top1", "etpp_top1"])]
    status = dict(zip(top1["run_id"], top1["status"], strict=True))
    assert status[by_case["top1 'abc'"]] == status[by_case["summary []"]] == "corrupt"
    assert status[by_case["finished"]] == "finished"


def test_non_numeric_metric_other_than_top1_is_a_hole(tmp_path):
    manifest = load_manifest(manifest_path(7))
    run = next(r for r in resolve(manifest, "smoke") if r.row == "ResNet-50" and r.key == "baseline")
    write_json_atomic(tmp_path / run.run_id / "summary.json", {"top1": 90.0, "wall_time_s": "abc"})
    frame = reproduce(manifest, "smoke", collect_runs(tmp_path)).set_index(["row", "column"])
    assert frame.loc["ResNet-50", "baseline_top1"]["reproduced"] == 90.0
    walls = frame[frame["status"].str.contains("wall_time_s 'abc', not a number")]
    assert len(walls) >= 1 and walls["reproduced"].isna().all()


def test_repro_run_retrains_bad_summaries_and_reports_what_it_cannot(table7_dirs, capsys):
    root, by_case, runs = table7_dirs
    outcomes = {o.run.run_id: o for o in local.run_locally(runs, root, log=print)}
    out = capsys.readouterr().out
    trained = {name for name, _ in toy_runner.CALLS}
    for case, run_id in by_case.items():
        _, state, blocked, detail = RUNDIR_CASES[case]
        if state == "finished":
            assert outcomes[run_id].status == "skipped"
        elif blocked:  # left as it is, with its one line
            assert outcomes[run_id].status == "failed" and run_id not in trained and detail in outcomes[run_id].detail
        else:
            assert outcomes[run_id].status == "finished" and run_id in trained, case
            assert RunDir(root / run_id).state() == "finished"
    assert "training it again" in out and (root / by_case["run path is a file"]).read_text() == "not a run\n"


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        atomic_write(tmp_path / "a.json", lambda f: f.write(b"{}"))
        write_json_atomic(tmp_path / "b.json", {})
        ckpt.save(tmp_path, 1, {"step": 1})
    finally:
        os.umask(old)
    for name in ("a.json", "b.json", "checkpoint-000000001.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o664, name


# --- the lock -----------------------------------------------------------------------------------------------------


HOLD = ("import sys, time; from repro.launch.rundir import RunLock; lock = RunLock(sys.argv[1]); lock.acquire(); "
        "print('held', flush=True); time.sleep(120)")


@pytest.fixture
def held(tmp_path):
    """Another process holding the lock of ``tmp_path / 'held'``; killed with -9 (its lock dies with it)."""
    d = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(d)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield d, proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_second_start_says_who_holds_the_lock_and_a_kill_frees_it(held):
    d, proc = held
    with pytest.raises(RunDirBusy) as err:
        RunLock(d).acquire()
    message = str(err.value)
    assert "\n" not in message and f"in use by pid {proc.pid} on {socket.gethostname()} since " in message
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with RunLock(d):  # stale-safe: the kernel dropped the dead holder's lock
        assert json.loads((d / LOCK_FILE).read_text())["pid"] == os.getpid()
        with RunLock(d):  # re-entrant within a process (launcher, then trainer)
            pass
        assert json.loads((d / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert (d / LOCK_FILE).read_text() == ""


def test_repro_train_refuses_a_held_run_directory(held):
    d, proc = held
    with pytest.raises(RunDirBusy, match=f"pid {proc.pid}"):
        train(TrainConfig(**TINY), d)
    assert not (d / "train_config.json").exists()  # nothing of the running run was touched


def test_slurm_job_takes_the_same_lock(held):
    d, proc = held
    (d / "toy.json").write_text(json.dumps({"steps": 2, "sleep_s": 0}))
    with pytest.raises(RunDirBusy, match=f"pid {proc.pid}"):
        job_mod.RunJob(d, "test_cluster_job:toy_train")()
    assert not (d / "steps.log").exists() and job_mod.read_events(d) == []


def test_repro_run_skips_a_held_run_with_the_holder(held, monkeypatch, capsys):
    d, proc = held
    monkeypatch.setitem(local.RUNNERS, "in1k", "toy_runner:run")
    toy_runner.CALLS.clear()
    runs = resolve(load_manifest(manifest_path(7)), "smoke", ["ResNet-50"])
    root = d.parent / "runs"
    root.mkdir()
    os.symlink(d, root / runs[0].run_id)
    outcomes = local.run_locally(runs, root)
    assert [o.status for o in outcomes] == ["busy", "finished"]
    assert f"busy     {runs[0].label}: " in capsys.readouterr().out and f"pid {proc.pid}" in outcomes[0].detail


def test_without_flock_the_record_is_the_lock(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    d = tmp_path / "r"
    d.mkdir()
    record = {"host": socket.gethostname(), "pid": os.getppid(), "time": "t"}  # alive
    (d / LOCK_FILE).write_text(json.dumps(record))
    with pytest.raises(RunDirBusy, match=f"pid {os.getppid()} .*no flock: if that process is gone, delete"):
        RunLock(d).acquire()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (d / LOCK_FILE).write_text(json.dumps({**record, "pid": dead.pid}))
    with RunLock(d):  # a dead holder on this host is taken over
        assert json.loads((d / LOCK_FILE).read_text())["pid"] == os.getpid()
    (d / LOCK_FILE).write_text(json.dumps({**record, "host": "elsewhere"}))
    with pytest.raises(RunDirBusy, match="on elsewhere"):
        RunLock(d).acquire()


@pytest.mark.slow
def test_two_repro_run_on_one_runs_directory_train_each_run_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "REPRO_RUNNERS": "in1k=toy_runner:run", "TOY_RUNNER_SLEEP": "1.5"}
    cmd = [sys.executable, "-m", "repro.cli", "run", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs",
           str(tmp_path / "runs")]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(0.3)
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
    outs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    trained = sorted((tmp_path / "runs").glob("*/trained_by.log"))
    assert len(trained) == 4 and all(len(t.read_text().splitlines()) == 1 for t in trained)
    assert "busy" in outs[1] or "skip" in outs[1]
