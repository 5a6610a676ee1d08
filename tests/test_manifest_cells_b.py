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
