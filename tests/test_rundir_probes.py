"""Run directories probed as an adversarial user would: broken checkpoints fall back (or the run restarts, saying
so), broken summaries are holes with a reason and are trained again, a path nobody can train is reported, a
concurrent start is refused with the holder's name, and the launchers, the SLURM status and the aggregator agree
on every run's state."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
import toy_task

from repro.cli import main
from repro.launch import job as job_mod
from repro.launch import local
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.launch.rundir import LOCK_FILE, RunDir, RunDirBusy, RunLock, atomic_write, write_json_atomic
from repro.results.collect import collect_runs, read_run, reproduce
from repro.tasks import REGISTRY
from repro.train import checkpoint as ckpt
from repro.train.config import TrainConfig
from repro.train.engine import NonFiniteResult, Trainer, train

TINY = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=64,
            max_val_images=32, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, log_every_steps=1,
            crop_scale=(0.35, 1.0), eval_every_epochs=1.0, seed=3, method="efficienttrain++", epochs=2)
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def first_param(trainer: Trainer) -> torch.Tensor:
    return next(iter(trainer.model.parameters()))


# --- checkpoints ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A run directory with real trainer checkpoints at steps 2 and 4 (their weights differ) and 5 metrics lines."""
    run = tmp_path_factory.mktemp("template") / "run"
    trainer = Trainer(TrainConfig(**TINY), run)
    for step in (2, 4):
        with torch.no_grad():
            first_param(trainer).add_(1.0)
        trainer.step = step
        trainer.save()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"kind": "train", "step": s}) + "\n" for s in range(5)))
    return run


def rehash(path: Path) -> None:
    """Record a checksum that matches the file as it is now (a file broken before it was hashed)."""
    ckpt.digest_path(path).write_text(f"{ckpt._sha256(path)}  {path.name}\n")


def resave(path: Path, edit: Callable[[dict], None]) -> None:
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)
    rehash(path)


def flip_byte_in_largest_tensor(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    header = info.header_offset
    name_len, extra_len = int.from_bytes(data[header + 26:header + 28], "little"), int.from_bytes(
        data[header + 28:header + 30], "little")
    offset = header + 30 + name_len + extra_len + info.file_size // 2
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def other_model(state: dict) -> None:
    state["model"] = timm.create_model("test_convnext", num_classes=10).state_dict()


NEWEST = "checkpoint-000000004.pt"
CHECKPOINT_CASES = {
    "0-byte": lambda p: (p.write_bytes(b""), rehash(p)),
    "0-byte, checksum of the old bytes": lambda p: p.write_bytes(b""),
    "truncated": lambda p: (p.write_bytes(p.read_bytes()[:100]), rehash(p)),
    "missing keys": lambda p: resave(p, lambda s: s.pop("optimizer")),
    "another model": lambda p: resave(p, other_model),
    "a weight's shape": lambda p: resave(p, lambda s: s["model"].update(
        {next(iter(s["model"])): torch.zeros(3, 3)})),
    "flipped byte in a weight": flip_byte_in_largest_tensor,
    "no checksum file": lambda p: ckpt.digest_path(p).unlink(),
    "a list, not a state": lambda p: (torch.save([1, 2], p), rehash(p)),
}
REASONS = {
    "0-byte": "", "0-byte, checksum of the old bytes": "sha256 ", "truncated": "",
    "missing keys": "missing optimizer", "another model": "model: ", "a weight's shape": "model: ",
    "flipped byte in a weight": "sha256 ", "no checksum file": "no checksum",
    "a list, not a state": "holds a list",
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_broken_newest_checkpoint_falls_back_to_the_previous(case, template, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(template, run)
    expected = torch.load(run / "checkpoint-000000002.pt", weights_only=True)["model"]
    CHECKPOINT_CASES[case](run / NEWEST)
    broken = (run / NEWEST).read_bytes()
    trainer = Trainer(TrainConfig(**TINY), run)
    trainer.restore()
    err = capfd.readouterr().err.strip().splitlines()
    assert trainer.step == 2
    assert all(torch.equal(t, expected[k]) for k, t in trainer.model.state_dict().items())
    assert len(err) == 1 and f"{run / NEWEST}: unusable checkpoint ({REASONS[case]}" in err[0], err
    assert "falling back to the previous one" in err[0] and "Traceback" not in err[0]
    assert [p.name for p in ckpt.checkpoints(run)] == ["checkpoint-000000002.pt"]  # out of the rotation ...
    (kept,) = (p for p in run.glob(f"{NEWEST}.rejected-*") if p.suffix != ckpt.DIGEST)  # ... but kept
    assert kept.read_bytes() == broken


def test_repro_eval_falls_back_without_moving_anything(template, tmp_path):
    from repro.commands.eval import evaluate_run

    run = tmp_path / "run"
    shutil.copytree(template, run)
    write_json_atomic(run / "train_config.json", TrainConfig(**TINY).model_dump())
    flip_byte_in_largest_tensor(run / NEWEST)
    before = sorted(p.name for p in run.iterdir())
    assert evaluate_run(run)["step"] == 2
    assert sorted(p.name for p in run.iterdir()) == before


def test_no_usable_checkpoint_restarts_from_zero_saying_so_and_keeps_the_old_metrics(template, tmp_path, capfd):
    """Neither checkpoint fits this trainer: nothing of them is restored (not even half), one line says that
    training starts again, and the earlier metrics are renamed aside instead of being appended to."""
    run = tmp_path / "run"
    shutil.copytree(template, run)
    resave(run / NEWEST, other_model)
    resave(run / "checkpoint-000000002.pt", lambda s: s.pop("rng"))
    fresh = Trainer(TrainConfig(**TINY), tmp_path / "fresh").model.state_dict()
    trainer = Trainer(TrainConfig(**TINY), run)
    trainer.restore()
    err = capfd.readouterr().err.strip().splitlines()
    assert trainer.step == 0 and all(torch.equal(t, fresh[k]) for k, t in trainer.model.state_dict().items())
    assert len(err) == 3 and "none of the 2 checkpoint(s) is usable: training starts from step 0" in err[2]
    (old,) = run.glob("metrics.jsonl.*.old")
    assert old.name in err[2] and len(old.read_text().splitlines()) == 5
    assert not (run / "metrics.jsonl").exists() and trainer.log.lines == 0


def test_metrics_without_any_checkpoint_are_kept_aside(tmp_path, capfd):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n')  # killed before the first checkpoint
    trainer = Trainer(TrainConfig(**TINY), run)
    trainer.restore()
    (err,) = capfd.readouterr().err.strip().splitlines()
    assert "no checkpoint to resume from: training starts from step 0" in err
    assert next(run.glob("metrics.jsonl.*.old")).read_text() == '{"kind": "train", "step": 1}\n'


def test_stale_temp_files_are_removed_at_start_and_nothing_else(template, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(template, run)
    stale = [run / ".checkpoint-000000006.pt.0badc0de.tmp", run / ".checkpoint-000000006.pt.sha256.1234abcd.tmp",
             run / ".rank1-000000006.pt.feedbeef.tmp", run / "checkpoint-000000001.pt.sha256"]  # orphan checksum
    for p in stale:
        p.write_bytes(b"x")
    other = run / ".environment.json.abcd0123.tmp"  # not the trainer's: another command may be writing it
    other.write_bytes(b"x")
    trainer = Trainer(TrainConfig(**TINY), run)
    trainer.restore()
    assert trainer.step == 4
    assert not any(p.exists() for p in stale) and other.exists()


def test_stage_switch_seconds_survive_a_resume(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(TrainConfig(**TINY), run)
    trainer.stage_switch_seconds = [0.5, 0.25]
    trainer.step = 3
    trainer.save()
    resumed = Trainer(TrainConfig(**TINY), run)
    resumed.restore()
    assert resumed.stage_switch_seconds == [0.5, 0.25]


@pytest.mark.parametrize("killed_in_call", [0, 1])
def test_checksum_and_file_agree_after_a_kill_during_a_save(tmp_path, monkeypatch, killed_in_call):
    """Re-saving a step (a preemption checkpoint where a stage-end one exists) and dying before the new file is
    renamed in (call 0) or before its checksum is (call 1): the checksum there matches its file, or there is none
    (and the file is then not resumed from)."""
    ckpt.save(tmp_path, 5, {"step": 5}, keep=2)
    path = tmp_path / "checkpoint-000000005.pt"
    assert ckpt.digest_path(path).read_text() == f"{ckpt._sha256(path)}  {path.name}\n"
    real, calls = ckpt.atomic_write, []

    def dies(target, write):
        calls.append(target)
        if len(calls) > killed_in_call:
            raise KeyboardInterrupt  # the process is gone: nothing after this runs
        real(target, write)

    monkeypatch.setattr(ckpt, "atomic_write", dies)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(tmp_path, 5, {"step": 6, "more": torch.ones(4)}, keep=2)
    monkeypatch.undo()
    digest = ckpt.digest_path(path)
    assert not digest.exists() or digest.read_text().split()[0] == ckpt._sha256(path)
    assert ckpt.load_latest(tmp_path, warn=lambda _: None, keep_rejected=False) is None


# --- non-finite results -------------------------------------------------------------------------------------------


def test_weights_that_turn_nan_on_the_last_step_are_an_error_without_summary(tmp_path, monkeypatch):
    cfg = TrainConfig(**{**TINY, "method": "baseline", "epochs": 1})
    original = Trainer._train_step

    def diverging(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        if self.step + 1 == self.total_steps:  # the loss was finite; the update is not
            with torch.no_grad():
                first_param(self).fill_(float("nan"))
        return loss

    monkeypatch.setattr(Trainer, "_train_step", diverging)
    with pytest.raises(NonFiniteResult, match=r"weights are NaN/inf after step \d+ .*lower the learning rate"):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "r" / "summary.json").exists()
    assert RunDir(tmp_path / "r").state() == "partial"


def test_non_finite_final_metric_is_an_error_without_summary(tmp_path, monkeypatch):
    cfg = TrainConfig(**{**TINY, "method": "baseline", "epochs": 1})
    monkeypatch.setattr(Trainer, "evaluate", lambda self, model=None: {"top1": math.nan, "top5": 1.0,
                                                                       "val_loss": 2.0})
    with pytest.raises(NonFiniteResult, match="final top1=nan .*no summary.json was written"):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "r" / "summary.json").exists()
    assert all(json.loads(line)["kind"] != "final" for line in (tmp_path / "r" / "metrics.jsonl").open())


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
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    toy_task.CALLS.clear()
    runs = [r for r in resolve(load_manifest(manifest_path(7)), "smoke")  # toy_task fails these on purpose
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
    trained = {name for name, _ in toy_task.CALLS}
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
    for name in ("a.json", "b.json", "checkpoint-000000001.pt", "checkpoint-000000001.pt.sha256"):
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
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    toy_task.CALLS.clear()
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
           "REPRO_TASK_MODULES": "toy_plugin", "TOY_RUNNER_SLEEP": "1.5"}
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
