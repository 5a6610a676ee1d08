"""Each method's defining behaviour on a tiny ViT, and exact resume for each (as the engine's own resume test)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch

from repro.methods import budgeted_training, infobatch, progressive_learning
from repro.train.config import TrainConfig
from repro.train.engine import Trainer, train
from repro.train.timing import TIMING_KEYS

TINY = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=192,
            max_val_images=64, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, log_every_steps=1,
            crop_scale=(0.35, 1.0), eval_every_epochs=1.0, seed=3, mixup=0.0, cutmix=0.0, reprob=0.0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def records(run: Path, kind: str | None = None) -> list[dict]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in recs if kind in (None, r["kind"])]


@pytest.mark.parametrize("method", ["infobatch", ["efficienttrain++", "infobatch"], "fixres",
                                    ["efficienttrain", "fixres"], "budgeted-training", "progressive-learning",
                                    "deit-iii"])
def test_interrupt_and_resume_is_bit_identical(tmp_path, method):
    kw = dict(method=method, epochs=3)
    reference = train(cfg(**kw), tmp_path / "a")
    for stop in (4, 11):  # inside an epoch / a stage
        with pytest.raises(KeyboardInterrupt):
            train(cfg(**kw, stop_after_steps=stop), tmp_path / "b")
    resumed = train(cfg(**kw), tmp_path / "b")
    for key in ("top1", "top5", "val_loss", "steps"):
        assert resumed[key] == reference[key]
    assert records(tmp_path / "a") == records(tmp_path / "b")


def _selector(n: int, epochs: float, seed: int = 0) -> tuple[infobatch.InfoBatch, types.SimpleNamespace]:
    plan = [types.SimpleNamespace(steps=int(epochs * n / 10), batch_size=10)]
    trainer = types.SimpleNamespace(plan=plan, cfg=types.SimpleNamespace(seed=seed))
    return infobatch.InfoBatch(TrainConfig(model="m")), trainer


def test_infobatch_prunes_below_mean_with_probability_r_and_rescales():
    method, trainer = _selector(1000, 8)
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    kept, w = method.select(trainer, 0, order)
    assert torch.equal(kept, order) and torch.all(w == 1)  # equal initial scores: nothing is below the mean
    method.observe_losses(trainer, torch.arange(1000), torch.linspace(0, 1, 1000) ** 2)  # mean 1/3
    well = method.scores < method.scores.mean()
    kept, w = method.select(trainer, 1, order)
    assert set(torch.nonzero(~well).squeeze(1).tolist()) <= set(kept.tolist())  # hard samples all kept
    kept_well = well[kept]
    assert int(kept_well.sum()) == int((1 - infobatch.RATIO) * int(well.sum()))  # r of the well-learned pruned
    assert torch.all(w[kept_well] == 1 / (1 - infobatch.RATIO)) and torch.all(w[~kept_well] == 1)
    positions = {int(i): p for p, i in enumerate(order)}
    assert [positions[int(i)] for i in kept] == sorted(positions[int(i)] for i in kept)  # the epoch's order
    again, _ = _selector(1000, 8)[0], None
    again.scores = method.scores.clone()
    assert torch.equal(again.select(trainer, 1, order)[0], kept)  # deterministic: seed and epoch
    full, w = method.select(trainer, 7, order)  # epoch 7 >= 0.875 * 8: annealing, full data
    assert torch.equal(full, order) and torch.all(w == 1)


def test_infobatch_run_takes_fewer_steps_and_weights_the_kept_losses(tmp_path, monkeypatch):
    seen: list[tuple[int, float]] = []
    original = infobatch.InfoBatch.observe_losses

    def spy(self, trainer, indices, losses):
        if trainer.selection is not None:
            seen.append((len(trainer.selection.indices), float(trainer.selection.weights.max())))
        original(self, trainer, indices, losses)

    monkeypatch.setattr(infobatch.InfoBatch, "observe_losses", spy)
    base = train(cfg(epochs=4), tmp_path / "base")
    ours = train(cfg(method="infobatch", epochs=4), tmp_path / "ib")
    assert ours["steps"] < base["steps"] == 24
    assert any(n < 192 and w == 2.0 for n, w in seen)  # pruned epochs, kept well-learned losses doubled
    lrs_base = [r["lr"] for r in records(tmp_path / "base", "train")]
    lrs_ours = [r["lr"] for r in records(tmp_path / "ib", "train")]
    assert lrs_ours[:6] == lrs_base[:6]  # the full first epoch: the same schedule ...
    epochs = [r["epoch"] for r in records(tmp_path / "ib", "train")]
    assert epochs == sorted(epochs) and 3.8 < epochs[-1] <= 4  # ... on nominal epochs: all 4 covered


def test_budgeted_training_decays_linearly_to_zero(tmp_path):
    c = cfg(method="budgeted-training", epochs=3, warmup_epochs=0.5)
    factor = budgeted_training.BudgetedTraining(c).lr_schedule(c, 3.0)
    assert factor(0.0) == 0.0 and factor(0.5 / 3) == pytest.approx(1.0) and factor(1.0) == 0.0
    assert factor(0.5 / 3 + (1 - 0.5 / 3) / 2) == pytest.approx(0.5)
    train(c, tmp_path / "r")
    lrs = [r["lr"] for r in records(tmp_path / "r", "train")]
    peak = lrs.index(max(lrs))
    steps = [a - b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False)]
    assert max(steps) == pytest.approx(min(steps), rel=1e-6)  # linear after the warm-up ...
    assert lrs[-1] == pytest.approx(steps[0], rel=1e-6)  # ... reaching 0 one step after the last


def test_progressive_learning_grows_size_magnitude_and_dropout_together(tmp_path, monkeypatch):
    rates: list[float] = []
    original = progressive_learning.set_dropout
    monkeypatch.setattr(progressive_learning, "set_dropout", lambda m, r: (rates.append(r), original(m, r)))
    trainer = Trainer(cfg(method="progressive-learning", epochs=4), tmp_path / "r")
    trainer.train()
    recs = records(tmp_path / "r", "train")
    assert [p.resolution for p in trainer.plan] == [16, 20, 24, 28]  # 128 -> 224, scaled to 28
    by_stage = {r["stage"]: (r["resolution"], r["magnitude"]) for r in recs}
    assert [by_stage[i][0] for i in (1, 2, 3, 4)] == [16, 20, 24, 28]
    assert [by_stage[i][1] for i in (1, 2, 3, 4)] == pytest.approx([3.0, 5.0, 7.0, 9.0])  # m 5/15 -> 1 of 9
    assert rates == pytest.approx([0.1, 0.1 + 0.2 / 3, 0.1 + 0.4 / 3, 0.3])
    assert trainer.model.head_drop.p == pytest.approx(0.3)


def test_fixres_fine_tunes_only_classifier_and_norms_at_the_test_size(tmp_path):
    trainer = Trainer(cfg(method="fixres", epochs=2), tmp_path / "r")
    summary = trainer.train()
    before = torch.load(sorted((tmp_path / "r").glob("checkpoint-*.pt"))[-1], weights_only=True)["model"]
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    norms = {k for k, _ in trainer.model.named_parameters() if "norm" in k}
    assert changed and changed <= norms | {"head.weight", "head.bias"}
    assert "head.weight" in changed and trainer.eval_size == 36  # 28 * 288 / 224
    base = train(cfg(epochs=2), tmp_path / "base")
    assert summary["steps"] == base["steps"]  # the same main training, then the phase
    assert summary["wall_time_s"] > 0


def test_deit3_recipe(tmp_path, monkeypatch):
    import repro.data.transforms as tr

    calls: list[int] = []
    original = tr.three_augment
    monkeypatch.setattr(tr, "three_augment", lambda img: (calls.append(img.size[0]), original(img))[1])
    trainer = Trainer(cfg(method="deit-iii", epochs=1, smoothing=0.1, reprob=0.25), tmp_path / "r")
    c = trainer.cfg  # the effective config, recorded as the run's
    assert (c.opt, c.loss, c.augment, c.smoothing, c.reprob, c.drop_path) == ("lamb", "bce", "3augment", 0, 0, 0.05)
    assert trainer.train_set.transform.randaug is None
    trainer.train()
    assert calls and set(calls) == {28}


def test_bce_counts_every_mixed_class_as_positive():
    from repro.train.engine import _criterion

    logits = torch.tensor([[2.0, -1.0, 0.0]])
    mixed = torch.tensor([[0.7, 0.3, 0.0]])
    loss = _criterion(cfg(loss="bce"), soft_targets=True)(logits, mixed)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0, 1.0, 0.0]]))
    assert loss.shape == (1,) and torch.allclose(loss, expected)


def test_simple_random_crop_keeps_the_whole_short_side():
    import random

    from PIL import Image

    from repro.data.transforms import Augment, CurriculumTransform

    t = CurriculumTransform(Augment(final_size=16, randaug=False, reprob=0.0, simple_crop=True, hflip=0.0,
                                    mean=(0.0,) * 3, std=(1.0,) * 3))
    img = Image.new("RGB", (64, 32), (255, 255, 255))
    random.seed(0)
    torch.manual_seed(0)
    x = t(img, 16, 0.0)
    assert x.shape == (3, 16, 16) and torch.all(x == 1.0)  # short side to 16, a 16 x 16 window of it (+ pad)


def test_augregs_false_turns_the_pipeline_off():
    c = cfg(augregs=False, mixup=0.8, cutmix=1.0, smoothing=0.1, reprob=0.25, drop_path=0.1)
    assert (c.augment, c.mixup, c.cutmix, c.smoothing, c.reprob, c.drop_path) == ("none", 0, 0, 0, 0, 0)


def test_three_augment_is_seeded_and_changes_the_image():
    import random

    from PIL import Image

    from repro.data.transforms import three_augment

    img = Image.linear_gradient("L").convert("RGB").resize((32, 32))
    outs = []
    for _ in range(2):
        random.seed(1)
        torch.manual_seed(1)
        outs.append(list(three_augment(img).getdata()))
    assert outs[0] == outs[1] and outs[0] != list(img.getdata())


def test_replace_model_keeps_the_optimizer_state_of_unchanged_parameters(tmp_path):
    import copy

    trainer = Trainer(cfg(epochs=1, model_ema=True), tmp_path / "r")
    x = torch.randn(2, 3, 28, 28)
    trainer.model(x).sum().backward()
    trainer.optimizer.step()
    grown = copy.deepcopy(trainer.model)
    grown.head = torch.nn.Linear(grown.head.in_features, 7)  # a changed shape starts fresh
    old = {n: trainer.optimizer.state[p]["exp_avg"].clone() for n, p in trainer.model.named_parameters()}
    trainer.replace_model(grown)
    state = {n: trainer.optimizer.state.get(p) for n, p in trainer.model.named_parameters()}
    assert torch.equal(state["blocks.0.attn.qkv.weight"]["exp_avg"], old["blocks.0.attn.qkv.weight"])
    assert state["head.weight"] is None and trainer.ema.module.head.out_features == 7
