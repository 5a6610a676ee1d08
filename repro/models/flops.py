"""Parameters and FLOPs of the Table 7 models at any input size B (EfficientTrain++ Table 3 and Table 7).

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode` on one image and reports *multiply-accumulates*
as "FLOPs", the convention of the paper's #FLOPs column (ResNet-50: 4.1G). Only matrix products and
convolutions are counted (as fvcore and the papers of every Table 7 family do); norms, activations, softmax
and pooling are not. Attention products are always counted: timm's fused attention is switched off while
counting, so the ``q @ k^T`` and ``attn @ v`` matmuls run as ``bmm``/``matmul`` ops the counter sees (the fused
SDPA kernels are registered in the counter too, but a masked or math-fallback path may not be).

Models are built on the ``meta`` device, so measuring even CSWin-Base costs no real arithmetic. Results are
cached in memory and, for the 19 Table 7 models at the curriculum sizes, in ``flops_cache.json`` next to this
file (regenerate with ``python -m repro.models.flops``); a missing entry is measured on demand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when something must be measured: cached look-ups stay light
    import torch
    from torch import nn

CACHE_PATH = Path(__file__).with_name("flops_cache.json")
CURRICULUM_SIZES = (96, 128, 160, 192, 224)
"""Every B of the ET / ET++ schedules (Tables 5, 6), the released B lists and Table 3's sizes."""


@dataclass(frozen=True)
class Measurement:
    """Parameters and multiply-accumulates of one forward pass of one image at ``img_size`` x ``img_size``."""

    model: str  # timm name
    img_size: int
    params: int
    macs: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def gflops(self) -> float:
        """Paper convention: GMACs reported as "GFLOPs"."""
        return self.macs / 1e9


def _set_fused_attention(model: nn.Module, fused: bool | None) -> dict[nn.Module, bool]:
    """Set timm's ``fused_attn`` on every attention module (``None``: leave as is); returns the old flags."""
    old = {m: bool(m.fused_attn) for m in model.modules() if hasattr(m, "fused_attn")}
    if fused is not None:
        for m in old:
            m.fused_attn = fused
    return old


def count_macs(model: nn.Module, img_size: int, in_chans: int = 3, device: str | torch.device = "cpu") -> int:
    """Multiply-accumulates of ``model`` on one ``img_size`` image (matmuls + convolutions, attention included).

    The model is left switched to ``img_size`` (:func:`repro.models.set_input_size`), in its previous train/eval
    mode and with its fused-attention flags restored.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from repro.models.zoo import set_input_size

    flags = _set_fused_attention(model, False)  # explicit q @ k^T and attn @ v, which the counter always sees
    set_input_size(model, img_size)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, in_chans, img_size, img_size, device=device)
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
        for m, fused in flags.items():
            m.fused_attn = fused
    return int(counter.get_total_flops()) // 2  # the counter counts 2 FLOPs per multiply-accumulate


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def measure(name: str, img_size: int = 224) -> Measurement:
    """Build the full-width Table 7 model ``name`` (paper or timm name) on ``meta`` and count it at ``img_size``.

    The model is built with its final size 224 and switched to ``img_size`` with
    :func:`repro.models.set_input_size`, exactly as the trainer does at a curriculum stage switch.
    """
    import torch

    from repro.models.zoo import create, entry

    e = entry(name)
    try:
        with torch.device("meta"):
            model = create(e.timm, img_size=224)
        macs = count_macs(model, img_size, device="meta")
    except (NotImplementedError, RuntimeError):  # an op without a meta kernel: count on the CPU instead
        model = create(e.timm, img_size=224)
        macs = count_macs(model, img_size)
    return Measurement(e.timm, img_size, count_params(model), macs)


def _key(timm_name: str, img_size: int) -> str:
    return f"{timm_name}@{img_size}"


@lru_cache(maxsize=1)
def _disk_cache() -> dict[str, dict[str, int]]:
    if not CACHE_PATH.exists():
        return {}
    data = json.loads(CACHE_PATH.read_text())
    return dict(data.get("measurements", {}))


@cache
def measured(name: str, img_size: int = 224) -> Measurement:
    """Cached :func:`measure`: the committed JSON first, then a live measurement."""
    from repro.models.zoo import entry

    timm_name = entry(name).timm
    hit = _disk_cache().get(_key(timm_name, img_size))
    if hit is not None:
        return Measurement(timm_name, img_size, int(hit["params"]), int(hit["macs"]))
    return measure(timm_name, img_size)


def macs(name: str, img_size: int = 224) -> int:
    return measured(name, img_size).macs


def cost_fn(name: str) -> Callable[[int], float]:
    """Per-image cost at input size B for the core's budget accounting (:data:`repro.core.curriculum.CostFn`):
    measured MACs of model ``name`` at B. Relative costs ``cost(B) / cost(final)`` are what the core uses."""
    from repro.models.zoo import entry

    timm_name = entry(name).timm  # fail early on unknown names

    def cost(b: int) -> float:
        return float(macs(timm_name, b))

    return cost


def write_cache(names: Iterable[str] | None = None, sizes: Iterable[int] = CURRICULUM_SIZES) -> Path:
    """Measure ``names`` (default: the 19 Table 7 models) at ``sizes`` and write ``flops_cache.json``."""
    import timm
    import torch

    from repro.models.zoo import TABLE7, entry

    rows: dict[str, dict[str, int]] = {}
    for n in names or [e.timm for e in TABLE7]:
        for b in sizes:
            m = measure(n, b)
            rows[_key(entry(n).timm, b)] = {"params": m.params, "macs": m.macs}
    payload = {
        "about": "MACs of one image (paper 'FLOPs') and parameters; python -m repro.models.flops regenerates",
        "torch": torch.__version__.split("+")[0],
        "timm": timm.__version__,
        "measurements": dict(sorted(rows.items())),
    }
    CACHE_PATH.write_text(json.dumps(payload, indent=1) + "\n")
    _disk_cache.cache_clear()
    measured.cache_clear()
    return CACHE_PATH


def relative_cost(name: str, b: int, final_size: int = 224) -> float:
    """Measured cost of one image at B relative to ``final_size`` (Table 3's "relative computational cost")."""
    r = macs(name, b) / macs(name, final_size)
    if not math.isfinite(r) or r <= 0:
        raise ValueError(f"bad relative cost {r} for {name} at B={b}")
    return r


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    print(write_cache())
