"""Run links (``init_from``): validation, identity, dependency order of `repro run`, and `repro status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toy_task
import yaml

from repro.cli import main
from repro.errors import UserError
from repro.launch.manifest import load_manifest
from repro.launch.resolve import resolve
from repro.tasks import REGISTRY

HEADER = {"table": 99, "title": "links", "caption": "c", "shows": "s", "command": "make table99",
          "columns": [{"key": "top1", "label": "Top-1", "source": "run", "run": "ft", "metric": "top1"}],
          "profiles": {"smoke": "smoke"}}


def two_stage_manifest(directory: Path, models: tuple[str, ...] = ("ResNet-50",), **ft: object) -> Path:
    """Table 99: per model a pre-training (in1k) and a fine-tuning of it (transfer)."""
    rows = [{"label": model, "cells": {"top1": 1.0}, "runs": {
        "pretrain": {"model": model, "method": "baseline", "epochs": 300},
        "ft": {"task": "transfer", "model": model, "method": "baseline", "epochs": 100, "init_from": "pretrain",
               **ft}}} for model in models]
    path = directory / "table99.yaml"
    path.write_text(yaml.safe_dump({**HEADER, "rows": rows}, sort_keys=False))
    return path


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    monkeypatch.setitem(REGISTRY, "transfer", toy_task.TRANSFER)
    toy_task.CALLS.clear()
    return toy_task.CALLS


def test_the_link_is_part_of_the_identity(toy, tmp_path):
    runs = resolve(load_manifest(two_stage_manifest(tmp_path)), "smoke")
    assert [r.key for r in runs] == ["pretrain", "ft"]
    pretrain, ft = runs
    assert ft.upstream == pretrain.run_id and ft.config["init_from"] == pretrain.run_id
    assert ft.run_id.startswith("transfer-resnet-50-baseline-")
    other = resolve(load_manifest(two_stage_manifest(tmp_path, ("DeiT-Tiny",))), "smoke")[1]
    assert other.config["init_from"] != ft.config["init_from"] and other.run_id != ft.run_id


@pytest.mark.parametrize(("change", "message"), [
    ({"init_from": "pretrian"}, "init_from 'pretrian' is not a run of this row (runs: pretrain, ft)"),
    ({"init_from": "ft"}, "init_from links form a cycle (ft -> ft)"),
    ({"init_from": None}, "a 'transfer' run fine-tunes another run: name it with init_from"),
])
def test_bad_links_are_one_line_manifest_errors(toy, tmp_path, change, message):
    with pytest.raises(UserError, match="table99.yaml: rows.0") as err:
        load_manifest(two_stage_manifest(tmp_path, **change))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_link_to_the_wrong_kind_of_run_is_refused(toy, tmp_path):
    path = two_stage_manifest(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["rows"][0]["runs"]["pretrain"]["task"] = "in22k"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(UserError, match="a 'transfer' run cannot start from 'pretrain', a 'in22k' run; it starts "
                                        "from tasks: in1k"):
        load_manifest(path)
    assert main(["validate", str(path)]) == 2


def test_run_trains_upstream_first_and_skips_dependents_of_failures(toy, tmp_path, capsys):
    """DeiT-Tiny's toy pre-training fails: its fine-tuning is skipped with one line, the other row trains."""
    manifest = two_stage_manifest(tmp_path, ("DeiT-Tiny", "ResNet-50"))
    runs = tmp_path / "runs"
    assert main(["run", str(manifest), "--runs", str(runs)]) == 1
    out = capsys.readouterr().out
    blocked = [line for line in out.splitlines() if line.split(": ", 1)[-1].startswith("blocked")]
    assert len(blocked) == 1 and "DeiT-Tiny / ft" in blocked[0] and "which is failed" in blocked[0]
    assert [name.split("-")[0] for name, _ in toy] == ["deit", "resnet", "transfer"]
    ft = next(runs.glob("transfer-resnet-50-*/summary.json"))
    assert json.loads(ft.read_text())["top1"] == 91.0  # the toy fine-tuning read its own upstream
    assert main(["status", str(manifest), "--runs", str(runs)]) == 0
    status = capsys.readouterr().out
    assert "waiting for deit-tiny-baseline-" in status and "2 finished, 1 partial, 1 pending" in status


def test_smoke_stand_ins_and_shared_proxies():
    """On the smoke profile IN-22K is 8000 Fashion-MNIST images (4x the IN-1K proxy's 2000), every downstream set
    is sklearn's digits, and a Large model trains Base's proxy: ConvNeXt-L's pre-training is ConvNeXt-B's run,
    its fine-tunings (drop path 0.3, not 0.2) are its own."""
    from repro.launch.manifest import manifest_path

    runs = resolve(load_manifest(manifest_path(12)), "smoke", ["ConvNeXt-Base / Baseline", "ConvNeXt-Large / Baseline"])
    base, large = ({r.key: r for r in runs if r.row.startswith(m)} for m in ("ConvNeXt-Base", "ConvNeXt-Large"))
    assert base["run"].run_id == large["run"].run_id
    assert base["run"].config["dataset"] == "fashion-mnist" and base["run"].config["max_train_images"] == 8000
    assert base["ft224"].config["max_train_images"] == 2000 and base["ft384"].config["final_size"] == 96
    assert large["ft224"].upstream == base["run"].run_id and large["ft224"].run_id != base["ft224"].run_id
    transfer = [r for r in resolve(load_manifest(manifest_path(16)), "smoke") if r.spec.task == "transfer"]
    assert {r.config["dataset"] for r in transfer} == {"digits"} and len({r.run_id for r in transfer}) == 3


def test_a_stand_ins_overrides_set_its_runs_settings_under_the_runs_own(tmp_path):
    """The COCO / ADE20K proxies' batch and learning-rate multiples come from their stand-in, over the base's
    (images_per_batch 16) and the profile's; a run's own override still wins; the full profile keeps the base's."""
    import shutil

    from repro.launch.manifest import STAND_INS, manifest_path

    det = {r.row: r for r in resolve(load_manifest(manifest_path(17)), "smoke") if r.key == "det"}
    cascade = det["Cascade Mask-RCNN / Swin-T / Baseline"].config
    assert cascade["images_per_batch"] == 8 and cascade["lr_scale"]["cascade-mask-rcnn-1x"] == 2
    assert round(cascade["epochs"]) == 4 and cascade["dataset"] == "coco-proxy"
    seg = next(r for r in resolve(load_manifest(manifest_path(18)), "smoke") if r.key == "seg").config
    assert seg["lr_scale"] == {"upernet-80k": 10, "upernet-160k": 10} and seg["proxy_val_images"] == 100
    full = next(r for r in resolve(load_manifest(manifest_path(17)), "full") if r.key == "det").config
    assert full["images_per_batch"] == 16 and full["lr_scale"] == {}

    for name in ("table17.yaml", "profiles", "base"):
        source = manifest_path(17).parent / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    shutil.copy(STAND_INS, tmp_path / "stand_ins.yaml")
    text = (tmp_path / "table17.yaml").read_text()
    own = "overrides: {detector: cascade-mask-rcnn-1x, images_per_batch: 4}}"
    (tmp_path / "table17.yaml").write_text(text.replace("overrides: {detector: cascade-mask-rcnn-1x}}", own))
    mine = next(r for r in resolve(load_manifest(tmp_path / "table17.yaml"), "smoke")
                if r.key == "det" and r.row == "Cascade Mask-RCNN / Swin-T / Baseline")
    assert mine.config["images_per_batch"] == 4


def test_a_dependent_goes_on_once_another_process_finished_its_upstream(toy, tmp_path):
    """Two `repro run` on one runs directory: the upstream was busy (the other process trained it) when this one
    reached it, and is finished by the time its dependent comes up."""
    from repro.launch import local
    from repro.launch.rundir import RunDir, write_json_atomic

    pretrain, ft = resolve(load_manifest(two_stage_manifest(tmp_path)), "smoke")
    root = tmp_path / "runs"
    done = {pretrain.run_id: local.Outcome(pretrain, "busy", "in use by pid 1")}
    assert local._one(ft, RunDir(root / ft.run_id), done, lambda _: None).status == "blocked"
    (root / pretrain.run_id).mkdir(parents=True)
    write_json_atomic(root / pretrain.run_id / "summary.json", {"top1": 90.0})
    assert local._one(ft, RunDir(root / ft.run_id), done, lambda _: None).status == "finished"
