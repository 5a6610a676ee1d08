"""Curriculum by Smoothing (Sinha, Garg & Larochelle, "Curriculum By Smoothing", NeurIPS'20).

The output of each convolution of the CNN is smoothed by a Gaussian kernel (a fixed depthwise convolution)
before its normalisation and non-linearity; the kernel's sigma is annealed so that high-frequency information
in the feature maps enters training gradually (its Sec. 3, eq. (3)). Read from the reference code
(pairlab/CBS, ``resnet.py``, ``arguments.py``, ``solver_cbs.py``): a 3x3 kernel (``--kernel_size 3``), the
normalised 2-D Gaussian with zero padding, on the stem convolution and on every convolution of the residual
blocks but not on the shortcut's projection; sigma starts at 1 (``--std 1``) and is multiplied by 0.9 every
5 epochs (``--std_factor 0.9 --epoch 5``) of its 200-epoch default, i.e. 40 decays over training -- here 40
decays over the run's progress (0..1 on the curriculum's axis), whatever its length.

Here the kernels are forward hooks on timm's ``nn.Conv2d`` modules (every convolution whose name does not
contain ``downsample``, timm's shortcut projection), active in training mode only. At the end of training
sigma is 0 and the network is the plain one: evaluation (and every scoring or test pass) runs it unsmoothed.
The reference code tests with its last kernel (sigma = 0.9**39 = 0.016, whose 3x3 Gaussian has off-centre
weights exp(-1 / (2 sigma^2)) < 1e-800: the identity), so the two agree. Sigma is a function of the progress alone, set
before each step (``Method.step_start``): nothing to checkpoint. Composes with ET/ET++ (progress is then the
fraction of their curriculum).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from repro.errors import UserError
from repro.methods import Method, register

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch


KERNEL_SIZE = 3
SIGMA0 = 1.0
FACTOR = 0.9
DECAYS = 40  # every 5 of 200 epochs


def sigma_at(progress: float) -> float:
    """The kernel's sigma at a point of training (0..1); 0 once training is done."""
    return 0.0 if progress >= 1.0 else SIGMA0 * FACTOR ** math.floor(progress * DECAYS)


def gaussian_kernel(sigma: float, size: int = KERNEL_SIZE) -> torch.Tensor:
    """The normalised ``size`` x ``size`` Gaussian of standard deviation ``sigma`` (the identity at 0)."""
    import torch

    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = (x == 0).to(torch.float64) if sigma <= 0 else torch.exp(-(x**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).to(torch.float32)


def smoothed_convs(model: torch.nn.Module) -> list[str]:
    """Names of the convolutions whose outputs are smoothed: every Conv2d but the shortcut projections."""
    import torch

    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and "downsample" not in name]


@register
class SmoothingCurriculum(Method):
    name = "smoothing-curriculum"
    paper = "Sinha et al., Curriculum by Smoothing, NeurIPS'20: 3x3 Gaussian after each conv, sigma 1 x0.9 x40 -> 0"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.sigma = SIGMA0
        self._hooked: set[int] = set()

    def _smooth(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if not module.training or self.sigma <= 0:
            return None
        import torch.nn.functional as F

        c = output.shape[1]
        k = gaussian_kernel(self.sigma).to(output.device, output.dtype)
        return F.conv2d(output, k.expand(c, 1, KERNEL_SIZE, KERNEL_SIZE), padding=KERNEL_SIZE // 2, groups=c)

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        model = trainer.model
        if id(model) in self._hooked:
            return
        names = smoothed_convs(model)
        if not names:
            raise UserError(f"smoothing-curriculum smooths the feature maps of convolutions; {trainer.cfg.model} "
                            "has no nn.Conv2d: use a CNN (Table 11: ResNet-18)")
        modules = dict(model.named_modules())
        for name in names:
            modules[name].register_forward_hook(self._smooth)
        self._hooked.add(id(model))

    def step_start(self, trainer: Any, fraction: float) -> None:
        self.sigma = sigma_at(trainer.curriculum.axis_progress(fraction))
