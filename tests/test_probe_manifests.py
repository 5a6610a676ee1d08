"""Broken manifests, as an adversarial user writes them: `repro validate` and `repro run` each answer with exit 2
and one line on stderr naming the file and the field, never a traceback, before anything trains or touches a run
directory."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro.cli import main

TABLE7 = Path(__file__).resolve().parents[1] / "experiments" / "table07.yaml"
TEXT = TABLE7.read_text()
RUN = "baseline: {model: ResNet-50, method: baseline, epochs: 300}"  # row 0's baseline, as written in the file


def _text(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "table07.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return make


def _edit(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        data = yaml.safe_load(TEXT)
        edit(data)
        path = tmp / "table07.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


def _directory(tmp: Path) -> Path:
    (tmp / "table07.yaml").mkdir()
    return tmp / "table07.yaml"


def _run(data: dict[str, Any], key: str = "baseline") -> dict[str, Any]:
    return data["rows"][0]["runs"][key]


def _full(data: dict[str, Any]) -> dict[str, Any]:
    return data["profiles"]["full"]


# (case, the manifest, what the one line must name besides the file)
CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    # unreadable files
    ("empty file", _text(""), "the manifest is empty"),
    ("only comments", _text("# nothing here\n"), "the manifest is empty"),
    ("a list at top level", _text("- a\n- b\n"), "must be a YAML mapping, got list"),
    ("a string at top level", _text("just some text\n"), "must be a YAML mapping, got str"),
    ("binary garbage", _text(bytes(range(256)) * 4), "not UTF-8 text: byte 0x80 at line 2"),
    ("a Latin-1 byte", _text(TEXT.replace("Results on ImageNet-1K", "Résultats").encode("latin-1")),
     "not UTF-8 text: byte 0xe9 at line 1"),
    ("a NUL character", _text("table: 7\x00\n"), "not valid YAML at line 1: unacceptable character #x0000"),
    ("a directory as the path", _directory, "is a directory, not a manifest file"),
    ("no such file", lambda tmp: tmp / "table07.yaml", "no such manifest"),
    ("20,000-deep nesting", _text("notes: " + "[" * 20000 + "]" * 20000 + "\n"), "nested too deeply"),
    ("invalid YAML", _text("table: 7\nrows: [\n"), "not valid YAML at line 3"),
    ("a python object tag", _text('table: !!python/object/apply:os.system ["true"]\n'),
     "could not determine a constructor for the tag"),
    ("a duplicate top-level key", _text(TEXT + "table: 7\n"), f"line {TEXT.count(chr(10)) + 1}: duplicate key 'table'"),
    ("a duplicate key in a run", _text(TEXT.replace(RUN, RUN[:-1] + ", epochs: 30}")), "duplicate key 'epochs'"),
    # the schema
    ("missing caption", _edit(lambda d: d.pop("caption")), "caption: Field required"),
    ("missing rows", _edit(lambda d: d.pop("rows")), "rows: Field required"),
    ("table not a number", _edit(lambda d: d.update(table="seven")), "table: Input should be a valid integer"),
    ("table 0", _edit(lambda d: d.update(table=0)), "table: Input should be greater than or equal to 1"),
    ("rows a mapping", _edit(lambda d: d.update(rows={"a": 1})), "rows: Input should be a valid list"),
    ("no columns", _edit(lambda d: d.update(columns=[])), "columns: List should have at least 1 item"),
    ("an unknown top-level key", _edit(lambda d: d.update(colour="blue")), "colour: Extra inputs are not permitted"),
    ("a base key (bases follow the task)", _edit(lambda d: d.update(base="in1k")), "base: Extra inputs"),
    ("file name and table differ", _edit(lambda d: d.update(table=8)), "table: file name says table 7"),
    ("a row without label", _edit(lambda d: d["rows"][0].pop("label")), "rows.0.label: Field required"),
    ("duplicate row labels", _edit(lambda d: d["rows"][1].update(label="ResNet-50")),
     "duplicate row labels: ['ResNet-50']"),
    ("duplicate column keys", _edit(lambda d: d["columns"][1].update(key="params_m")),
     "duplicate column keys: ['params_m']"),
    ("a column key not snake_case", _edit(lambda d: d["columns"][0].update(key="Params M")), "must be snake_case"),
    ("a run column without its run", _edit(lambda d: d["columns"][2].pop("run")),
     "column 'baseline_top1' with source 'run' needs 'run'"),
    ("tolerance not a number", _edit(lambda d: d["columns"][0].update(tolerance="tight")),
     "columns.0.tolerance: Input should be a valid number"),
    ("negative tolerance", _edit(lambda d: d["columns"][0].update(tolerance=-1)),
     "columns.0.tolerance: Input should be greater than or equal to 0"),
    ("a cell of an unknown column", _edit(lambda d: d["rows"][0]["cells"].update(bogus=1.0)),
     "cells ['bogus'] are not columns"),
    ("a column without its cell", _edit(lambda d: d["rows"][0]["cells"].pop("gflops")),
     "no cell for columns ['gflops']"),
    ("a cell's run missing from the row", _edit(lambda d: d["rows"][0]["runs"].pop("etpp")), "needs a run 'etpp'"),
    ("a cell not a number", _edit(lambda d: d["rows"][3]["cells"].update(gflops="lots")), "rows.3.cells.gflops"),
    ("a NaN cell", _edit(lambda d: d["rows"][0]["cells"].update(gflops=math.nan)), "rows.0.cells.gflops"),
    # profiles
    ("an unknown profile name", _edit(lambda d: d["profiles"].update(fast=_full(d))), "profiles.fast"),
    ("an unknown shared profile", _edit(lambda d: d["profiles"].update(smoke="tiny")),
     "profiles.smoke: no shared profile 'tiny'"),
    ("a profile not a mapping", _edit(lambda d: d["profiles"].update(full=5)), "profiles.full: Input should be"),
    ("epoch_scale 0", _edit(lambda d: _full(d).update(epoch_scale=0)), "profiles.full.epoch_scale"),
    ("an unknown profile override", _edit(lambda d: _full(d).update(overrides={"lrr": 0.1})),
     "profiles.full.overrides.lrr: unknown setting 'lrr' (did you mean 'lr'"),
    ("a profile override of the wrong type", _edit(lambda d: _full(d).update(overrides={"mixup": "lots"})),
     "profiles.full.overrides.mixup: Input should be a valid number"),
    ("an unknown stand-in override", _edit(lambda d: _full(d).update(stand_ins={"coco": {
        "dataset": "coco-proxy", "why": "w", "overrides": {"images_per_batchh": 8}}})),
     "profiles.full.stand_ins.coco.overrides.images_per_batchh: unknown setting 'images_per_batchh' (did you mean "
     "'images_per_batch'"),
    # runs
    ("negative epochs", _edit(lambda d: _run(d).update(epochs=-3)),
     "rows.0.runs.baseline.epochs: Input should be greater"),
    ("zero epochs", _edit(lambda d: _run(d).update(epochs=0)), "rows.0.runs.baseline.epochs: Input should be greater"),
    ("infinite epochs", _edit(lambda d: _run(d).update(epochs=math.inf)),
     "rows.0.runs.baseline.epochs: Input should be a finite number"),
    ("final size 0", _edit(lambda d: _run(d).update(final_size=0)), "rows.0.runs.baseline.final_size"),
    ("an unknown task", _edit(lambda d: _run(d).update(task="imagenet")), "rows.0.runs.baseline.task"),
    ("a task without a base config", _edit(lambda d: _run(d).update(task="analysis")),
     "rows.0.runs.baseline.task (row 'ResNet-50'): no base config 'analysis'"),
    ("an unknown run key", _edit(lambda d: _run(d).update(epoch=300)), "rows.0.runs.baseline.epoch: Extra inputs"),
    ("an unknown model", _edit(lambda d: _run(d).update(model="ResNet-5O")),
     "rows.0.runs.baseline.model (row 'ResNet-50'): unknown model 'ResNet-5O' (did you mean 'ResNet-50'"),
    ("an unknown method", _edit(lambda d: _run(d, "etpp").update(method="efficienttrain+")),
     "rows.0.runs.etpp.method (row 'ResNet-50'): unknown method 'efficienttrain+' (did you mean 'efficienttrain++'"),
    ("an unknown schedule", _edit(lambda d: _run(d, "etpp").update(schedule="etp")),
     "rows.0.runs.etpp.schedule (row 'ResNet-50'): unknown schedule 'etp' (did you mean"),
    ("an unknown override", _edit(lambda d: _run(d).update(overrides={"warmup_epoch": 5})),
     "rows.0.runs.baseline.overrides.warmup_epoch (row 'ResNet-50'): unknown setting 'warmup_epoch' (did you mean "
     "'warmup_epochs'"),
    ("an override of the wrong type", _edit(lambda d: _run(d).update(overrides={"lr": "fast"})),
     "rows.0.runs.baseline.overrides.lr (row 'ResNet-50'): Input should be a valid number"),
    ("an infinite override", _edit(lambda d: _run(d).update(overrides={"lr": math.inf})),
     "rows.0.runs.baseline.overrides.lr (row 'ResNet-50'): Input should be a finite number"),
    ("an override out of range", _edit(lambda d: _run(d).update(overrides={"drop_path": 1.5})),
     "rows.0.runs.baseline.overrides.drop_path (row 'ResNet-50'): Input should be less than 1"),
    ("a run field as an override", _edit(lambda d: _run(d).update(overrides={"epochs": 30})),
     "rows.0.runs.baseline.overrides.epochs (row 'ResNet-50'): 'epochs' is a field of the run: set it there"),
    ("an infinite unimplemented setting", _edit(lambda d: _run(d).update(overrides={"lfc_window": math.inf})),
     "rows.0.runs.baseline.overrides.lfc_window (row 'ResNet-50'): must be a finite number"),
]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("make", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_broken_manifest(tmp_path, capsys, command, make, expected):
    runs = tmp_path / "runs"
    (runs / "resnet-50-baseline-0123456789").mkdir(parents=True)  # another table's run: must stay untouched
    (runs / "resnet-50-baseline-0123456789" / "config.json").write_text("{}")
    before = _snapshot(runs)
    (tmp_path / "in").mkdir()
    path = make(tmp_path / "in")
    argv = ["validate", str(path)] if command == "validate" else ["run", str(path), "--runs", str(runs)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"repro {command}: error: {path}: ") and expected in err, err
    assert _snapshot(runs) == before


def test_at_least_the_probed_cases():
    assert len(CASES) >= 33 and len({case for case, _, _ in CASES}) == len(CASES)


def test_a_seed_override_is_refused(tmp_path, capsys):
    """Seeds are a run dimension (the profile's ``seeds`` or ``--seeds``): an override would give one id two seeds."""
    path = tmp_path / "table07.yaml"
    path.write_text(TEXT.replace(RUN, RUN[:-1] + ", overrides: {seed: 3}}", 1))
    assert main(["validate", str(path)]) == 2
    assert "overrides.seed (row 'ResNet-50'): seeds are a dimension of every run" in capsys.readouterr().err
