"""Task ``transfer``: fine-tuning an IN-1K run on a downstream classification set (Sec. 6.3, Table 16).

The recipe (``experiments/base/transfer.yaml``) is DeiT's for CIFAR-10 and Stanford Cars, which the paper
follows (facebookresearch/deit issue #45, the authors' answer of 2021-01-22): images resized to 224^2, batch
768, SGD (momentum 0.9) with lr 0.01 and weight decay 1e-4, 1000 epochs, no random erasing and no stochastic
depth, everything else as DeiT's IN-1K training (RandAug m9, Mixup 0.8, CutMix 1.0, smoothing 0.1, cosine,
5 warm-up epochs). The downstream data sets are read as users have them (``repro.data.readers``: CIFAR's
python pickles; Flowers-102 and Stanford Dogs as ImageNet-style folders). A run names its pre-training with
``init_from``; the classifier is re-initialised for the downstream class count (``repro.train.finetune``).
"""

from __future__ import annotations

from repro.tasks import Task, in1k, register

TASK = register(Task("transfer", run=in1k.run, check=in1k.check, upstream=frozenset({"in1k"}),
                     requires_upstream=True, pauses=True))
