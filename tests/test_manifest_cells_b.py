"""Spot checks of the transcribed cells of Tables 12-23: the number of numeric cells and a few specific ones."""

from __future__ import annotations

from repro.launch.manifest import load_manifest, manifest_path


def _cells(table: int) -> dict[tuple[str, str], float]:
    cells = load_manifest(manifest_path(table)).paper_cells()
    out = {(row, col): value for row, col, value in cells}
    assert len(out) == len(cells)
    return out


def test_table13_early_large_batch():
    cell = _cells(13)
    assert len(cell) == 40
    assert cell["CSWin-Base / Baseline", "top1_384"] == 87.2
    assert cell["CSWin-Base / EfficientTrain++ (2.0x) w/o early large batch", "walltime_speedup_64gpus"] == 1.4
    assert cell["CSWin-Large / EfficientTrain++ (2.0x) w/ early large batch", "top1_384"] == 88.1
    assert cell["CSWin-Large / EfficientTrain++ (3.0x) w/ early large batch", "walltime_speedup_64gpus"] == 2.9


def test_table14_replay_buffer():
    cell = _cells(14)
    assert len(cell) == 24
    assert cell["DeiT-Tiny / ET++ w/o replay buffer", "peak_preprocessing_load"] == 12630
    assert cell["DeiT-Small / ET++ w/ replay buffer", "top1"] == 80.8
    assert cell["CSWin-Small / ET++ w/ replay buffer", "peak_preprocessing_load"] == 759
    # the replay buffer (n_buffer = 1) halves the load and keeps the computation speedup
    for model in ("DeiT-Tiny", "DeiT-Small", "CSWin-Tiny", "CSWin-Small"):
        off, on = f"{model} / ET++ w/o replay buffer", f"{model} / ET++ w/ replay buffer"
        assert abs(cell[on, "peak_preprocessing_load"] - cell[off, "peak_preprocessing_load"] / 2) <= 0.5
        assert cell[on, "computation_speedup"] == cell[off, "computation_speedup"]


def test_table16_downstream_transfer():
    cell = _cells(16)
    assert len(cell) == 15
    assert cell["DeiT-Small / Baseline", "top1_cifar10"] == 98.39
    assert cell["DeiT-Small / EfficientTrain", "top1_stanford_dogs"] == 91.12
    assert cell["DeiT-Small / EfficientTrain++", "top1_flowers102"] == 97.38
    assert cell["DeiT-Small / EfficientTrain++", "pretrain_speedup"] == 1.6


def test_table23_infobatch():
    cell = _cells(23)
    assert len(cell) == 8
    assert cell["ResNet-50 / Baseline", "top1"] == 78.8
    assert cell["ResNet-50 / InfoBatch", "training_speedup"] == 1.4 and cell["ResNet-50 / InfoBatch", "top1"] == 78.6
    assert cell["ResNet-50 / EfficientTrain++ + InfoBatch", "training_speedup"] == 1.7
    assert cell["ResNet-50 / EfficientTrain++ + InfoBatch", "top1"] == 79.6


def test_table20_etpp_over_et():
    cell = _cells(20)
    assert len(cell) == 26
    assert cell["EfficientTrain", "search_gpu_hours"] == 1088.1 and cell["EfficientTrain", "peak_io"] == 1078.1
    assert cell["EfficientTrain + Algorithm 2", "peak_io"] == 3060.1
    assert cell["EfficientTrain + Efficient Low-frequency Down-sampling", "top1_swin_small"] == 83.1
    assert cell["EfficientTrain++", "search_cost_reduction"] == 2.6
    assert cell["EfficientTrain++", "peak_io_reduction"] == 5.4
    # the printed reductions are 1088.1 / 425.8 and 3060.1 / 562.1, rounded
    assert round(cell["EfficientTrain", "search_gpu_hours"] / cell["EfficientTrain++", "search_gpu_hours"], 1) == 2.6
    assert round(cell["EfficientTrain + Algorithm 2", "peak_io"] / cell["EfficientTrain++", "peak_io"], 1) == 5.4


def test_table21_algorithm2_design():
    cell = _cells(21)
    assert len(cell) == 9
    assert cell["Following AutoProg [7]", "top1_deit_small"] == 80.2
    assert cell["– (constant I_i; minimize (1−Acc_i)·T_i^α)", "top1_swin_tiny"] == 81.3
    assert cell["Algorithm 2", "top1_deit_small"] == 81.0 and cell["Algorithm 2", "top1_swin_tiny"] == 81.6
    assert all(cell[row, "training_speedup"] == 1.5 for row, col in cell if col == "training_speedup")


def test_table18_ade20k():
    cell = _cells(18)
    assert len(cell) == 42
    assert cell["UperNet (80k steps) / DeiT-S / EfficientTrain++", "pretrain_speedup"] == 1.6
    assert cell["UperNet (80k steps) / Swin-S / Baseline", "miou_ms_flip"] == 48.9
    assert cell["UperNet (160k steps) / Swin-B / EfficientTrain++", "miou_ms_flip"] == 50.0
    # Sec. 6.3: at 160k steps ET++ improves DeiT-Small's mIoU / mIoU MS+Flip by 1.1 / 1.2
    base, etpp = "UperNet (160k steps) / DeiT-S / Baseline", "UperNet (160k steps) / DeiT-S / EfficientTrain++"
    assert round(cell[etpp, "miou"] - cell[base, "miou"], 1) == 1.1
    assert round(cell[etpp, "miou_ms_flip"] - cell[base, "miou_ms_flip"], 1) == 1.2


def test_table12_imagenet22k():
    cell = _cells(12)
    assert len(cell) == 84
    assert cell["ConvNeXt-Large / Baseline", "gflops_384"] == 101.0
    assert cell["ConvNeXt-Large / EfficientTrain++", "node_days"] == 31.2
    assert cell["CSWin-Base / EfficientTrain++ (3.0x)", "pretrain_speedup"] == 3.03
    assert cell["CSWin-Large / EfficientTrain++ (2.0x)", "top1_224"] == 87.0
    # Sec. 6.1.3: ET++ saves 158.5 GPU-days (237.8 vs 79.3) for CSWin-Large; node days are GPU-days / 8
    large = "CSWin-Large / Baseline", "CSWin-Large / EfficientTrain++ (3.0x)"
    assert round(cell[large[0], "pretrain_gpu_days"] - cell[large[1], "pretrain_gpu_days"], 1) == 158.5
    for (row, col), value in cell.items():
        if col == "node_days":
            assert abs(value - cell[row, "pretrain_gpu_days"] / 8) <= 0.05 + 1e-9
    # Table 13 repeats the CSWin baselines and the EfficientTrain++ rows without early large batch
    t13 = _cells(13)
    for model in ("CSWin-Base", "CSWin-Large"):
        for col in ("top1_224", "top1_384"):
            assert cell[f"{model} / Baseline", col] == t13[f"{model} / Baseline", col]
            for x in ("2.0x", "3.0x"):
                assert cell[f"{model} / EfficientTrain++ ({x})", col] == t13[
                    f"{model} / EfficientTrain++ ({x}) w/o early large batch", col
                ]


def test_table19_et_ablations():
    m = load_manifest(manifest_path(19))
    assert sorted({r.group[:3] for r in m.rows if r.group}) == ["(a)", "(b)", "(c)"]
    cell = _cells(19)
    assert len(cell) == 47
    assert cell["(a) Low-frequency Cropping", "top1_deit_small"] == 80.0
    assert cell["(a) Low-frequency Cropping + Linear RandAug", "top1_cswin_tiny"] == 82.8
    assert cell["(b) Standard Image Down-sampling", "top1_cswin_large_in22k"] == 86.4
    assert cell["(b) Efficient Low-frequency Down-sampling‡", "top1_deit_small_100ep"] == 76.5
    assert cell["(c) Linear Increasing [58]", "top1_deit_tiny"] == 72.8
    # EfficientTrain appears in all three sub-tables with the same numbers
    for col in ("top1_deit_small", "top1_swin_tiny"):
        et = cell["(a) Low-frequency Cropping + Linear RandAug", col]
        assert cell["(b) Low-frequency Cropping", col] == cell["(c) Obtained from Algorithm 1", col] == et


def test_table15_mae():
    m = load_manifest(manifest_path(15))
    cell = _cells(15)
    assert len(cell) == 34
    assert cell["DINO [100] (ICCV'21)", "top1_reported"] == 82.8
    assert cell["LoMaR [104] (arXiv'22)", "pretrain_speedup_reported"] == 3.52
    assert cell["MAE 400-epoch + HOG", "top1"] == 83.2
    etpp = "MAE (ET++) 400-epoch + HOG"
    assert cell[etpp, "top1"] == 83.7 and cell[etpp, "pretrain_speedup"] == 3.98
    beit = m.row("BEiT [102] (ICLR'22)").cells["top1_reported"]
    assert beit.value == 83.2 and beit.note.startswith("†")
    # every printed Top-1 / speedup is in exactly one of its two columns
    for row in m.rows:
        assert (row.cells["top1"] is None) != (row.cells["top1_reported"] is None)


def test_table17_coco():
    cell = _cells(17)
    assert len(cell) == 57  # RetinaNet 2 x 4 (no mask AP) + Cascade Mask-RCNN 7 x 7
    # the garbled RetinaNet rows, decoded position by position (upper row first)
    assert cell["RetinaNet / Swin-T / Baseline", "ap_box"] == 41.7
    assert cell["RetinaNet / Swin-T / EfficientTrain", "ap_box_50"] == 63.3
    assert cell["RetinaNet / Swin-T / EfficientTrain", "ap_box_75"] == 44.5
    assert ("RetinaNet / Swin-T / Baseline", "ap_mask") not in cell
    assert cell["Cascade Mask-RCNN / Swin-T / EfficientTrain++", "ap_mask_75"] == 45.2
    assert cell["Cascade Mask-RCNN / Swin-B / EfficientTrain++", "ap_box"] == 51.3
    assert cell["Cascade Mask-RCNN / Swin-S / Baseline", "ap_mask_50"] == 66.3


def test_table22_transferability():
    cell = _cells(22)
    assert len(cell) == 49  # (a) 6 + (b) 6 + (c) 12 + (d) 10 + (e) 15
    # garbled (a)-(c), decoded: Sec. 6.4.2 quotes 81.0% -> 81.2% for DeiT-Small
    assert cell["(a) ET++, Swin-T IN-1K → DeiT-S IN-1K", "top1_in1k"] == 81.0
    assert cell["(a) ET++, DeiT-S IN-1K → DeiT-S IN-1K", "top1_in1k"] == 81.2
    assert cell["(a) ET++, DeiT-S IN-1K → DeiT-S IN-1K", "speedup"] == 1.6
    assert cell["(b) Baseline, CSWin-T IN-1K", "top1_in1k"] == 82.7
    assert cell["(c) ET++, CSWin-T IN-1K → CSWin-S IN-1K", "top1_in1k"] == 83.6
    assert cell["(c) ET++, CSWin-S IN-1K → CSWin-S IN-1K", "top1_in1k"] == 83.7
    # (d): 'lossless training speedup: 3.0 v.s. 3.8'
    assert cell["(d) ET++, CSWin-B IN-22K → CSWin-B IN-22K (3.8x)", "speedup"] == 3.8
    assert cell["(d) ET++, CSWin-B IN-22K → CSWin-B IN-22K (3.8x)", "top1_in1k"] == 86.0
    assert cell["(e) ET++, Swin-T (IN-1K → specific dataset)", "top1_nabirds"] == 59.4
    assert cell["(e) ET++, Swin-T (specific dataset → specific dataset)", "top1_stanford_dogs"] == 61.3
    # the (a)-(c) baselines and standard-curriculum rows are Table 7's cells
    t7 = _cells(7)
    for row, model in (("(a) Baseline, DeiT-S IN-1K", "DeiT-Small"), ("(b) Baseline, CSWin-T IN-1K", "CSWin-Tiny"),
                       ("(c) Baseline, Swin-S IN-1K", "Swin-Small"), ("(c) Baseline, CSWin-S IN-1K", "CSWin-Small")):
        assert cell[row, "top1_in1k"] == t7[model, "baseline_top1"]
