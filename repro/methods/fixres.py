"""FixRes (Touvron, Vedaldi, Douze & Jegou, "Fixing the train-test resolution discrepancy", NeurIPS'19).

Training with RandomResizedCrop makes objects look larger than at test time, so a network is better tested at
a higher resolution once its classifier and batch-norm statistics are adapted to it (Sec. 3-5). After the main
training this method fine-tunes, at the test size, only the classifier and the normalisation layers' affine
parameters -- batch-norm layers also re-estimate their running statistics (train mode) -- on the training
images with the test-time pre-processing (resize + centre crop), then evaluates at the test size.

Choices, ours (the paper's best test size depends on the model and the train size, and Table 11 does not say
which the authors used for CSWin): test size 288 for a 224 training size (1.29x, within the range of test
sizes FixRes evaluates for a 224-trained network), scaled with the final size; one epoch of fine-tuning with SGD
(momentum 0.9) at a constant LR of 1e-3 per 256 images, no weight decay. On Table 11's
CSWin rows (LayerNorm only) this adapts the classifier and LayerNorms. With EfficientTrain / ET++ (Table 11's
last rows) the curriculum trains and this phase follows: the paper's point that the two are orthogonal.
"""

from __future__ import annotations

from typing import Any

from repro.methods import Method, register

TEST_SCALE = 288 / 224
FINETUNE_EPOCHS = 1.0
FINETUNE_LR_PER_256 = 1e-3


def finetune(trainer: Any, size: int, epochs: float, lr: float) -> None:
    """Fine-tune the classifier and normalisation layers of ``trainer``'s model at ``size`` for ``epochs`` epochs
    of the training set (SGD, momentum 0.9, constant ``lr``), counted in the run's wall time. The order of the
    samples is drawn from the run's seed: a resumed run fine-tunes exactly as an uninterrupted one."""
    import torch

    from repro.data.transforms import EvalDataset, eval_transform
    from repro.errors import UserError
    from repro.train.engine import _takes
    from repro.train.model import set_input_size

    model = trainer.model
    if not _takes(model, trainer.device, size):
        raise UserError(f"{trainer.cfg.model} cannot take {size} x {size} inputs (its patch grid or windows); "
                        "FixRes needs a final size whose test size it takes")
    norms = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    trainable: list[torch.nn.Parameter] = []
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if isinstance(module, norms) or (classifier is not None and any(
                p is q for p in own for q in classifier.parameters())):
            trainable += own
    chosen = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    optimizer = torch.optim.SGD(trainable, lr=lr, momentum=0.9)
    train_base = trainer.train_set.base
    data = EvalDataset(train_base, eval_transform(size, *trainer._norm, trainer._crop_pct))
    g = torch.Generator().manual_seed(trainer.cfg.seed + 19)  # another order than the training stream's
    n = int(epochs * len(data))
    order = torch.cat([torch.randperm(len(data), generator=g) for _ in range(-(-n // len(data)))])[:n]
    bs = min(trainer.cfg.batch_size, n) // trainer.dist.world
    mine = order[trainer.dist.rank :: trainer.dist.world].tolist()
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, mine), batch_size=bs, drop_last=True,
                                         num_workers=trainer.cfg.workers)
    set_input_size(model, size)
    trainer.ddp_model.train()
    trainer.clock.stage_started()
    for x, y in loader:
        with trainer.clock.step():
            x, y = x.to(trainer.device), y.to(trainer.device)
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(trainer.ddp_model(x), y)
            loss.backward()
            optimizer.step()
    del loader
    trainer.clock.stage_finished()
    for p in model.parameters():
        p.requires_grad_(True)
    trainer.set_eval_size(size)


@register
class FixRes(Method):
    name = "fixres"
    paper = "Touvron et al., FixRes, NeurIPS'19: classifier + norm fine-tuning at the test size"

    def final_phase(self, trainer: Any) -> None:
        size = round(trainer.cfg.final_size * TEST_SCALE)
        finetune(trainer, size, FINETUNE_EPOCHS, FINETUNE_LR_PER_256 * trainer.cfg.batch_size / 256)
