"""Tasks ``in22k`` and ``in22k_finetune``: ImageNet-22K pre-training and its ImageNet-1K fine-tuning (App. A.2,
Tables 8, 12, 13, 19, 22).

* ``in22k`` (``experiments/base/in22k.yaml``): Table 24's recipe with App. A.2's changes -- 150 epochs, 5
  warm-up epochs, no EMA, drop path 0.1 / 0.1 (ConvNeXt-B/L) and 0.2 / 0.5 (CSWin-B/L), CSWin's lr 2e-3 and
  weight decay 0.05 / 0.1 -- for the baseline, ET, ET++ and ET++ with the early large batch (Table 13). The data
  set is read as users have it (``repro.data.readers``: synset folders, a documented ~1 % held-out split).
* ``in22k_finetune`` (``experiments/base/in22k_finetune.yaml``): fine-tuning of an ``in22k`` run on IN-1K at
  224^2 or 384^2 with ConvNeXt's recipe for IN-22K pre-trained models (the paper: "following [ConvNeXt]"; the
  numbers are facebookresearch/ConvNeXt TRAINING.md, "Fine-tune from ImageNet-22K pre-training"): 30 epochs,
  AdamW lr 5e-5 at batch 512, no warm-up, weight decay 1e-8, layer-wise LR decay 0.8, head init scale 0.001, no
  Mixup/CutMix, drop path 0.2 / 0.3 (B / L) at both sizes. Its run names its pre-training with ``init_from``.

Both train with the engine like ``in1k`` (:func:`repro.tasks.in1k.run`).
"""

from __future__ import annotations

from repro.tasks import Task, in1k, register

PRETRAIN = register(Task("in22k", run=in1k.run, check=in1k.check, pauses=True))
FINETUNE = register(Task("in22k_finetune", run=in1k.run, check=in1k.check, upstream=frozenset({"in22k"}),
                         requires_upstream=True, pauses=True))
