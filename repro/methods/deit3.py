"""DeiT III (Touvron, Cord & Jegou, "DeiT III: Revenge of the ViT", ECCV'22), its ImageNet-1K recipe (Sec. 3,
Table 1): 3-Augment (grayscale / solarization / Gaussian blur + colour jitter 0.3) instead of RandAugment,
simple random crop instead of RandomResizedCrop, LAMB, binary cross-entropy, no label smoothing and no random
erasing, Mixup 0.8 / CutMix 1.0 kept; trained at a lower resolution and fine-tuned at the final one (Sec. 4.2:
"training at lower resolution ... then fine-tuning at 224", the FixRes effect).

Choices: the low resolution is 192 for a 224 final size (DeiT III's IN-1K low-resolution setting), scaled with
the final size; the fine-tuning at the final size lasts 20 epochs of the paper's (scaled like the run's epochs:
``epochs * 20 / 300`` here) with all parameters, SGD momentum 0.9 at a constant LR of 1e-3 per 256 images
(this suite's FixRes fine-tuning loop, ``repro.methods.fixres.finetune``). The run's LR, weight decay, batch and
epochs stay the manifest's (Table 24 and the profile): LAMB's hyper-parameters of DeiT III (lr 3e-3 at batch
2048, wd 0.02) are a per-run override, not forced here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.core.curriculum import CurriculumSpec, Resolution
from repro.methods import Method, register
from repro.methods.fixres import FINETUNE_LR_PER_256, finetune

if TYPE_CHECKING:
    from repro.train.config import TrainConfig

LOW_RES = 192  # at a 224 final size
FINETUNE_FRACTION = 20 / 300

SPEC = CurriculumSpec(
    name="deit-iii", axis="epoch", boundaries=(0.0, 1.0), resolutions=(Resolution(float(LOW_RES)),),
    magnitude=(9.0,), linear_magnitude=False, budget=300,
    description="DeiT III: the whole budget at 192 (scaled), then fine-tuning at the final size",
    source="Touvron et al., ECCV'22, Sec. 4.2",
)


@register
class DeiT3(Method):
    name = "deit-iii"
    paper = "Touvron et al., DeiT III, ECCV'22: 3-Augment, SRC, LAMB, BCE, low-res training + 224 fine-tune"
    schedule = SPEC
    frequency_op = "bicubic"

    def settings(self, cfg: TrainConfig) -> dict[str, Any]:
        return {"augment": "3augment", "crop": "simple", "opt": "lamb", "loss": "bce", "smoothing": 0.0,
                "reprob": 0.0}

    def final_phase(self, trainer: Any) -> None:
        finetune(trainer, trainer.cfg.final_size, FINETUNE_FRACTION * trainer.cfg.epochs,
                 FINETUNE_LR_PER_256 * trainer.cfg.batch_size / 256, head_and_norms=False, seed_offset=3)
