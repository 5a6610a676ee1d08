"""Spot checks of the transcribed paper cells: Tables 1, 2, 3, 4, 8, 9, 10, 11 and 25 (cell counts and samples)."""

from __future__ import annotations

from repro.launch.manifest import load_manifest, manifest_path


def _cells(table: int) -> dict[tuple[str, str], float]:
    cells = load_manifest(manifest_path(table)).paper_cells()
    out = {(row, col): value for row, col, value in cells}
    assert len(out) == len(cells)
    return out


def test_table10_cells():
    cell = _cells(10)
    assert len(cell) == 12
    assert cell["Baseline", "top1_224"] == 83.4 and cell["Baseline", "walltime_speedup_512"] == 1.00
    assert cell["EfficientTrain", "top1_384"] == 84.7 and cell["EfficientTrain", "walltime_speedup_384"] == 2.91
    assert cell["EfficientTrain", "top1_512"] == 85.1 and cell["EfficientTrain", "walltime_speedup_512"] == 3.37


def test_table09_cells():
    cell = _cells(9)
    assert len(cell) == 12
    assert cell["DeiT-Tiny", "input_size"] == 224 and cell["DeiT-Tiny", "baseline_top1"] == 72.5
    assert cell["DeiT-Tiny", "et_top1"] == 74.3 and cell["DeiT-Tiny", "etpp_gain"] == 1.9
    assert cell["DeiT-Small", "etpp_top1"] == 81.3 and cell["DeiT-Small", "et_gain"] == 0.6
    # the printed gains are the differences to the baseline
    for model in ("DeiT-Tiny", "DeiT-Small"):
        for m in ("et", "etpp"):
            assert round(cell[model, f"{m}_top1"] - cell[model, "baseline_top1"], 1) == cell[model, f"{m}_gain"]


def test_table01_cells():
    cell = _cells(1)
    assert len(cell) == 10
    assert cell["Low-pass Filtered Val. Set", "epoch_20"] == 46.9
    assert cell["High-pass Filtered Val. Set", "epoch_20"] == 23.9
    assert cell["Low-pass Filtered Val. Set", "epoch_200"] == 68.6
    assert cell["High-pass Filtered Val. Set", "epoch_100"] == 53.5
    # the bandwidths are calibrated so that both sets end at 71.3%
    assert cell["Low-pass Filtered Val. Set", "epoch_300"] == cell["High-pass Filtered Val. Set", "epoch_300"] == 71.3


def test_table04_cells():
    cell = _cells(4)
    assert len(cell) == 10
    orig = "Original (B=224) 1st-300th ep"
    lfc = "Low-frequency Cropping (B=128) 1st-150th ep, Original (B=224) 151th-300th ep"
    assert cell[orig, "m_5"] == 80.7 and cell[orig, "m_9"] == 80.3
    assert cell[lfc, "m_1"] == 80.2 and cell[lfc, "m_7"] == 79.9 and cell[lfc, "m_9"] == 79.8


def test_table02_cells():
    cell = _cells(2)
    assert len(cell) == 13
    assert cell["1st-300th ep / -", "r_40"] == 78.3 and cell["1st-300th ep / -", "r_80"] == 80.0
    assert cell["1st-225th ep / 226th-300th ep", "r_60"] == 80.2
    assert cell["1st-75th ep / 76th-300th ep", "r_60"] == 80.4 and cell["1st-150th ep / 151th-300th ep", "r_80"] == 80.6
    assert cell["- / 1st-300th ep (baseline)", "r_40"] == 80.3
    assert ("- / 1st-300th ep (baseline)", "r_60") not in cell


def test_table08_cells():
    cell = _cells(8)
    assert len(cell) == 36
    assert cell["EfficientTrain", "solving_cost_gpu_hours"] == 1088.1
    assert cell["ET++", "solving_cost_gpu_hours"] == 425.8
    assert cell["ET++", "solving_cost_reduction"] == 2.56
    assert round(1088.1 / 425.8, 2) == 2.56
    assert cell["ET++", "deit_small_top1"] == 81.0 and cell["EfficientTrain", "deit_small_top1"] == 80.4
    assert cell["ET++", "in22k_walltime_speedup"] == 2.0 and cell["Baseline", "cswin_large_in22k_top1"] == 86.8
    assert ("Baseline", "solving_cost_gpu_hours") not in cell  # a dash
    # the IN-1K top-1 of the baseline / ET++ rows are Table 7's
    t7 = _cells(7)
    for key, model in [("resnet50", "ResNet-50"), ("deit_tiny", "DeiT-Tiny"), ("cswin_small", "CSWin-Small")]:
        assert cell["Baseline", f"{key}_top1"] == t7[model, "baseline_top1"]
        assert cell["ET++", f"{key}_top1"] == t7[model, "etpp_top1"]


def test_table25_cells():
    cell = _cells(25)
    assert len(cell) == 40
    assert cell["DeiT-Tiny", "baseline_top1_100ep"] == 65.8 and cell["DeiT-Tiny", "et_top1_100ep"] == 68.1
    assert cell["DeiT-Small", "et_top1_100ep"] == 76.4 and cell["DeiT-Small", "baseline_top1_100ep"] == 75.5
    assert cell["Swin-Small", "et_top1_200ep"] == 82.6 and cell["Swin-Tiny", "walltime_speedup"] == 1.49
    assert cell["Swin-Base", "input_size"] == 224 and cell["DeiT-Tiny", "walltime_speedup"] == 1.55
    # 300-epoch Swin-Base is Table 10's 224^2 column; 300-epoch ET is Table 8's EfficientTrain row
    t10, t8 = _cells(10), _cells(8)
    assert cell["Swin-Base", "et_top1_300ep"] == t10["EfficientTrain", "top1_224"] == 83.6
    assert cell["Swin-Base", "walltime_speedup"] == t10["EfficientTrain", "walltime_speedup_224"]
    assert cell["Swin-Small", "et_top1_300ep"] == t8["EfficientTrain", "swin_small_top1"]


def test_table03_cells():
    cell = _cells(3)
    assert len(cell) == 68
    assert cell["1st-300th ep / -", "deit_small_top1_b96"] == 70.5
    assert cell["1st-300th ep / -", "deit_small_relcost_b96"] == 0.18
    assert cell["1st-225th ep / 226th-300th ep", "deit_small_top1_b160"] == 80.0
    assert cell["1st-225th ep / 226th-300th ep", "deit_small_relcost_b160"] == 0.62
    assert cell["1st-75th ep / 76th-300th ep", "swin_tiny_relcost_b160"] == 0.88
    assert cell["- / 1st-300th ep (baseline)", "swin_tiny_top1_b96"] == 81.3
    # Table 4's m=9 cells are Table 3's baseline and its B=128, 1st-150th ep DeiT-Small run
    t4 = _cells(4)
    assert t4["Original (B=224) 1st-300th ep", "m_9"] == cell["- / 1st-300th ep (baseline)", "deit_small_top1_b96"]
    lfc = "Low-frequency Cropping (B=128) 1st-150th ep, Original (B=224) 151th-300th ep"
    assert t4[lfc, "m_9"] == cell["1st-150th ep / 151th-300th ep", "deit_small_top1_b128"] == 79.8


def test_table04_m9_baseline_is_table3s_at_full_and_m9_on_the_proxy():
    """The proxy trains RandAug m=3; Table 4's m=9 column must stay m=9 there (it was the m=3 baseline)."""
    from repro.launch.resolve import resolve

    def m9(table: int, profile: str, row: str, key: str) -> dict[str, object]:
        run = next(r for r in resolve(load_manifest(manifest_path(table)), profile, [row], 1) if r.key == key)
        return {"id": run.run_id, "aa": run.config["aa"]}

    original = "Original (B=224) 1st-300th ep"
    t3 = "- / 1st-300th ep (baseline)"
    t3_key = "ds96"  # DeiT-Small
    assert m9(4, "full", original, "m9") == m9(3, "full", t3, t3_key)
    assert m9(4, "proxy", original, "m9")["aa"] == "rand-m9-mstd0.5-inc1"
    assert m9(3, "proxy", t3, t3_key)["aa"] == "rand-m3-mstd0.5-inc1"


def test_table11_cells():
    m = load_manifest(manifest_path(11))
    cell = _cells(11)
    assert len(m.rows) == 39 and len(cell) == 117
    assert cell["ResNet-50 / CurriculumNet [41] (ECCV'18), 90 ep", "walltime_speedup"] == 2.22
    assert m.row("ResNet-50 / CurriculumNet [41] (ECCV'18), 90 ep").cells["walltime_speedup"].note == "<"
    assert cell["ResNet-50 / EfficientTrain, 90 ep", "walltime_speedup"] == 3.21
    assert cell["DeiT-Small / Budgeted ViT [55] (ICLR'23), 303 ep", "epochs"] == 303
    assert cell["DeiT-Small / EfficientTrain, 100 ep", "top1"] == 76.4
    assert cell["CSWin-Small / EfficientTrain+++FixRes, 200 ep", "top1"] == 83.9
    infobatch = m.row("ResNet-50 / InfoBatch [39] (ICLR'24), 300 ep")
    assert infobatch.cells["top1"].value == 78.6 and infobatch.cells["top1"].note == "† our reproduction"
    assert m.row("ResNet-18 / EfficientTrain, 90 ep").runs["run"].overrides == {"augregs": False}
    # the EfficientTrain++ rows are Table 7's top-1 and wall-time speedups
    t7 = _cells(7)
    for model in ("ResNet-50", "DeiT-Tiny", "DeiT-Small", "CSWin-Tiny", "CSWin-Small"):
        assert cell[f"{model} / EfficientTrain++, 200 ep", "top1"] == t7[model, "etpp_top1"]
        assert cell[f"{model} / EfficientTrain++, 200 ep", "walltime_speedup"] == t7[model, "walltime_speedup"]


def test_table11_resnet50_90ep_speedups_against_200ep_baseline():
    """The ResNet-50 90-epoch rows (w/o AugRegs) are timed against the 200-epoch w/o-AugRegs baseline:
    Label-sim. 200/90 = 2.22x and EfficientTrain 200/90 x 1.44 = 3.2x (a 90-epoch baseline would give ~1.0x and
    ~1.44x)."""
    m = load_manifest(manifest_path(11))
    cell = _cells(11)
    ref = m.row("ResNet-50 / EfficientTrain, 200 ep").runs["baseline"]
    assert ref.epochs == 200 and ref.overrides == {"augregs": False}
    for approach in ("CurriculumNet [41] (ECCV'18)", "Label-sim. Curriculum [44] (ECCV'20)", "EfficientTrain"):
        assert m.row(f"ResNet-50 / {approach}, 90 ep").runs["baseline"] == ref
    assert round(200 / 90, 2) == cell["ResNet-50 / Label-sim. Curriculum [44] (ECCV'20), 90 ep", "walltime_speedup"]
    et200 = cell["ResNet-50 / EfficientTrain, 200 ep", "walltime_speedup"]
    assert abs(200 / 90 * et200 - cell["ResNet-50 / EfficientTrain, 90 ep", "walltime_speedup"]) < 0.02


def test_table03_relcost_columns_name_their_run():
    m = load_manifest(manifest_path(3))
    for col in m.columns:
        if col.source == "cost":
            prefix = "ds" if col.key.startswith("deit_small") else "st"
            assert col.metric == "relative_cost" and col.run == prefix + col.key.rsplit("_b", 1)[1]
            for row in m.rows:
                if row.cells[col.key] is not None:
                    assert col.run in row.runs


def test_table10_224_runs_are_table7_and_table25_runs():
    from repro.launch.resolve import resolve

    for profile in ("full", "smoke"):
        ids = {}
        for table in (7, 10, 25):
            for run in resolve(load_manifest(manifest_path(table)), profile):
                ids[table, run.row, run.key] = run.run_id
        assert ids[10, "Baseline", "b224"] == ids[7, "Swin-Base", "baseline"] == ids[25, "Swin-Base", "baseline_300"]
        assert ids[10, "EfficientTrain", "r224"] == ids[25, "Swin-Base", "et_300"]
