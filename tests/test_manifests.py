"""Manifests: every table validates; broken copies fail with one line naming file, field and expectation."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from repro.cli import main
from repro.errors import UserError
from repro.launch.manifest import all_manifests, load_manifest

TABLE7 = Path(__file__).resolve().parents[1] / "experiments" / "table07.yaml"


def test_all_manifests_validate(capsys):
    paths = all_manifests()
    assert TABLE7 in paths
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.count("ok  ") == len(paths)


def test_table7_paper_cells_csv(capsys):
    """The 114 cells of Table 7: 19 models x (params, FLOPs, two top-1, two speedups), in paper order."""
    assert main(["paper", "7", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 114
    models = list(dict.fromkeys(r["row"] for r in rows))
    assert models[0] == "ResNet-50" and models[-1] == "CAFormer-M36" and len(models) == 19
    assert list(dict.fromkeys(r["column"] for r in rows)) == [
        "params_m", "gflops", "baseline_top1", "etpp_top1", "computation_speedup", "walltime_speedup"
    ]
    cell = {(r["row"], r["column"]): float(r["value"]) for r in rows}
    assert cell["DeiT-Tiny", "computation_speedup"] == 1.56 and cell["DeiT-Tiny", "walltime_speedup"] == 1.64
    assert cell["CAFormer-M36", "etpp_top1"] == 85.0 and cell["ConvNeXt-Base", "gflops"] == 15.4
    # Sec. 6.1.1: ET++ is within 0.1 below or above the baseline everywhere, and 1.49x-1.56x faster
    assert all(cell[m, "etpp_top1"] - cell[m, "baseline_top1"] >= -0.1 for m in models)
    assert all(1.49 <= cell[m, "computation_speedup"] <= 1.56 for m in models)


def _broken(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(TABLE7.read_text())
    edit(data)
    path = tmp_path / "table07.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["rows"][3]["cells"].update(gflops="lots"), "rows.3.cells.gflops"),
        (lambda d: d["rows"][0]["cells"].pop("etpp_top1"), "no cell for columns ['etpp_top1']"),
        (lambda d: d["rows"][0]["runs"].pop("etpp"), "needs a run 'etpp'"),
        (lambda d: d.pop("caption"), "caption: Field required"),
        (lambda d: d["rows"][1].update(label="ResNet-50"), "duplicate row labels"),
        (lambda d: d["columns"][0].update(key="Params M"), "must be snake_case"),
        (lambda d: d["rows"][0]["runs"]["baseline"].update(epochs=-3), "rows.0.runs.baseline.epochs"),
        (lambda d: d["rows"][0]["runs"]["baseline"].update(task="imagenet"), "rows.0.runs.baseline.task"),
        (lambda d: d.update(colour="blue"), "colour: Extra inputs are not permitted"),
        (lambda d: d.update(table=8), "file name says table 7"),
    ],
)
def test_broken_manifest_one_line_error(tmp_path, capsys, edit, expected):
    path = _broken(tmp_path, edit)
    with pytest.raises(UserError, match=None) as info:
        load_manifest(path)
    assert expected in str(info.value) and str(path) in str(info.value)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_unreadable_manifests(tmp_path, capsys):
    bad = tmp_path / "table07.yaml"
    bad.write_text("table: 7\nrows: [\n")
    assert main(["validate", str(bad)]) == 2
    assert "not valid YAML at line" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "table99.yaml")]) == 2
    assert "no such manifest" in capsys.readouterr().err
    bad.write_text("- just\n- a list\n")
    assert main(["validate", str(bad)]) == 2
    assert "must be a YAML mapping" in capsys.readouterr().err


@pytest.mark.parametrize(("table", "points_to"), [("5", "repro schedule et`"), ("6", "repro schedule etpp"),
                                                  ("24", "experiments/base/in1k.yaml")])
def test_tables_that_define_settings_say_where_they_live(table, points_to, capsys):
    for command in (["paper", table], ["table", table], ["run", table, "--profile", "smoke"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"Table {table} has no manifest" in err and points_to in err and err.count("\n") == 1


def test_shared_smoke_profile_is_one_definition(tmp_path):
    """Every manifest names the one smoke profile (experiments/profiles/smoke.yaml); a copy next to a manifest
    takes precedence, and an unknown name is a one-line error naming the field and the expected file."""
    for name in ("smoke", "proxy"):
        shared = {load_manifest(p).profiles[name].model_dump_json() for p in all_manifests()}
        assert len(shared) == 1
        assert all(yaml.safe_load(p.read_text())["profiles"][name] == name for p in all_manifests())

    (tmp_path / "profiles").mkdir()
    local = yaml.safe_load((TABLE7.parent / "profiles" / "smoke.yaml").read_text()) | {"epoch_scale": 0.5}
    (tmp_path / "profiles" / "smoke.yaml").write_text(yaml.safe_dump(local))
    copy = _broken(tmp_path, lambda d: None)
    assert load_manifest(copy).profiles["smoke"].epoch_scale == 0.5

    path = _broken(tmp_path, lambda d: d["profiles"].update(smoke="tiny"))
    with pytest.raises(UserError, match=r"profiles\.smoke: no shared profile 'tiny' \(expected "
                                        r"experiments/profiles/tiny\.yaml; known: proxy, smoke\)"):
        load_manifest(path)
    copy = _broken(tmp_path, lambda d: None)
    (tmp_path / "profiles" / "smoke.yaml").write_text("epoch_scale: 0.5\n")
    with pytest.raises(UserError, match=r"profiles\.smoke\.description: Field required"):
        load_manifest(copy)


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_pretraining_runs_resolve_against_their_own_task(profile):
    """The IN-1K pre-trainings of the downstream tables (16-18) are Table 7's runs: same App. A.1 settings (Swin-T:
    drop path 0.2, clip 5.0), same run id, so a backbone is trained once, whatever table asks for it first."""
    from repro.launch.manifest import manifest_path
    from repro.launch.resolve import resolve

    table7 = {(r.spec.model, r.spec.method): r for r in resolve(load_manifest(manifest_path(7)), profile)}
    shared = 0
    for table in (16, 17, 18):
        for run in resolve(load_manifest(manifest_path(table)), profile):
            if run.spec.task != "in1k":
                continue
            twin = table7.get((run.spec.model, run.spec.method))
            if twin is not None and (twin.spec.epochs, twin.spec.schedule) == (run.spec.epochs, run.spec.schedule):
                assert run.run_id == twin.run_id, (table, run.label)
                shared += 1
    assert shared >= 40
    swin = table7["Swin-Tiny", "baseline"].config
    assert (swin["drop_path"], swin["clip_grad"]) == (0.2, 5.0)
