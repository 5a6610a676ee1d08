"""Run directories probed as an adversarial user would: broken summaries are holes with a reason and are trained
again, a path nobody can train is reported, and the launchers, the SLURM status and the aggregator agree on every
run's state."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import toy_runner

from repro.cli import main
from repro.launch import job as job_mod
from repro.launch import local
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.launch.rundir import RunDir, atomic_write, write_json_atomic
from repro.results.collect import collect_runs, read_run, reproduce
from repro.train import checkpoint as ckpt

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
