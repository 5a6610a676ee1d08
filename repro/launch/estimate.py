"""GPU-hour estimates of a submission (``repro submit --dry-run``): each run's training compute from the cost
model (:func:`repro.models.cost.training_macs`) over a throughput taken from the paper's own runs.

The paper reports absolute training times only for Table 12's IN-22K pre-trainings, in GPU-days on NVIDIA 3090s
(Sec. 6.1.3). Their baselines give the throughput those GPUs reached: 150 epochs x 14.2M images x the paper's
GFLOPs per image / GPU-days, 2.1-3.3 T multiply-accumulates of the forward pass per second and GPU (ConvNeXt
lower, CSWin higher). A run's estimate is its forward MACs over their mean, divided by the cluster profile's
``speed_vs_3090``. Small models run below that rate (data loading bounds them, Table 14), so theirs are low.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

PAPER_GPU = "NVIDIA 3090"
CALIBRATION_TABLE = 12


@dataclass(frozen=True)
class Throughput:
    """Forward multiply-accumulates per second and GPU (images/s x MACs per image) of the paper's runs."""

    mean: float
    low: float
    high: float
    runs: int

    def describe(self) -> str:
        return (f"{self.mean / 1e12:.2f} T multiply-accumulates/s per GPU, the {PAPER_GPU} throughput of the "
                f"paper's own runs (Table {CALIBRATION_TABLE}'s {self.runs} IN-22K baselines: "
                f"{self.low / 1e12:.2f}-{self.high / 1e12:.2f})")


@cache
def paper_throughput() -> Throughput:
    """From Table 12's baseline rows (their manifest holds the paper's GPU-days and GFLOPs)."""
    from repro.launch.manifest import cell_value, load_manifest, manifest_path
    from repro.models.cost import TRAIN_IMAGES

    rates = []
    for row in load_manifest(manifest_path(CALIBRATION_TABLE)).rows:
        spec = row.runs["run"]
        days, gflops = cell_value(row.cells["pretrain_gpu_days"]), cell_value(row.cells["gflops_224"])
        if spec.method != "baseline" or days is None or gflops is None or spec.epochs is None:
            continue
        rates.append(TRAIN_IMAGES[str(spec.dataset)] * spec.epochs * gflops * 1e9 / (days * 86400))
    return Throughput(sum(rates) / len(rates), min(rates), max(rates), len(rates))


def gpu_hours(config: dict[str, Any], speed_vs_3090: float = 1.0) -> float | None:
    """Estimated GPU-hours of training the run ``config`` describes on GPUs ``speed_vs_3090`` times as fast as
    the paper's; None when the cost model has no compute for it."""
    from repro.models.cost import training_macs

    macs = training_macs(config)
    if macs is None:
        return None
    return macs / (paper_throughput().mean * speed_vs_3090) / 3600
