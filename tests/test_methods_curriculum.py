"""The curriculum-learning competitors of Table 11: each one's defining behaviour on a tiny ResNet and data, and
exact resume for each (as the engine's own resume test)."""

from __future__ import annotations

import types

import pytest
import torch
from test_methods_train import records

from repro.errors import UserError
from repro.methods import curriculumnet, dih_curriculum, label_similarity_curriculum, minimax_curriculum
from repro.methods import self_paced_learning as spl
from repro.methods import smoothing_curriculum as cbs
from repro.train.config import TrainConfig
from repro.train.engine import Trainer, train

TINY = dict(model="ResNet-50", model_variant="proxy", final_size=28, adapt="linear", max_train_images=192,
            max_val_images=64, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, log_every_steps=1,
            crop_scale=(0.35, 1.0), eval_every_epochs=1.0, seed=3, augregs=False)
CURRICULA = ["smoothing-curriculum", "self-paced-learning", "minimax-curriculum", "dih-curriculum", "curriculumnet",
             "label-similarity-curriculum"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


@pytest.mark.parametrize("method", [*CURRICULA, ["efficienttrain", "dih-curriculum"]])
def test_interrupt_and_resume_is_bit_identical(tmp_path, method):
    kw = dict(method=method, epochs=4)
    reference = train(cfg(**kw), tmp_path / "a")
    for stop in (4, 9):  # inside an epoch / after a selected epoch
        with pytest.raises(KeyboardInterrupt):
            train(cfg(**kw, stop_after_steps=stop), tmp_path / "b")
    resumed = train(cfg(**kw), tmp_path / "b")
    for key in ("top1", "top5", "val_loss", "steps", "extra_passes"):
        assert resumed.get(key) == reference.get(key)
    assert records(tmp_path / "a") == records(tmp_path / "b")


def test_smoothing_sigma_anneals_to_zero_and_smooths_only_training_convs(tmp_path):
    sigmas = [cbs.sigma_at(i / 400) for i in range(401)]
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0 and sigmas == sorted(sigmas, reverse=True)
    assert cbs.sigma_at(0.999) == pytest.approx(0.9**39)  # 40 decays of 0.9 (every 5 of 200 epochs)
    k = cbs.gaussian_kernel(1.0)
    assert k.sum() == pytest.approx(1.0) and k[1, 1] == k.max() and torch.equal(k, k.t())
    assert torch.equal(cbs.gaussian_kernel(0.0), torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    trainer = Trainer(cfg(method="smoothing-curriculum", epochs=2), tmp_path / "r")
    names = cbs.smoothed_convs(trainer.model)
    convs = [n for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert "conv1" in names and set(convs) - set(names) == {n for n in convs if "downsample" in n} != set()
    x = torch.randn(4, 3, 28, 28)
    trainer.model.eval()
    plain = trainer.model(x)
    method = trainer.methods.items[0]
    method.stage_start(trainer, trainer.plan[0], True)
    assert torch.equal(trainer.model(x), plain)  # eval mode: the plain network
    trainer.model.train()
    outputs = {}
    for progress in (0.0, 1.0):
        method.step_start(trainer, progress)
        torch.manual_seed(0)
        outputs[progress] = trainer.model(x)
    trainer.model.train()
    # sigma 0 is the identity: the same as the unhooked network in train mode (the same batch statistics)
    hookless = Trainer(cfg(epochs=2), tmp_path / "p").model
    hookless.load_state_dict(trainer.model.state_dict())
    hookless.train()
    assert torch.allclose(outputs[1.0], hookless(x), atol=1e-6)
    assert not torch.allclose(outputs[0.0], outputs[1.0], atol=1e-3)  # sigma 1 smooths


def test_smoothing_refuses_a_network_without_convolutions():
    method = cbs.SmoothingCurriculum(TrainConfig(model="m"))
    trainer = types.SimpleNamespace(model=torch.nn.Linear(4, 2), cfg=types.SimpleNamespace(model="mlp"))
    with pytest.raises(UserError, match="no nn.Conv2d"):
        method.stage_start(trainer, None, True)


def _trainer(n: int, epochs: float, batch: int = 10) -> types.SimpleNamespace:
    return types.SimpleNamespace(plan=[types.SimpleNamespace(steps=int(epochs * n / batch), batch_size=batch)],
                                 n_train=n, device=torch.device("cpu"), cfg=types.SimpleNamespace(seed=0))


def test_self_paced_threshold_admits_exactly_the_samples_below_it(monkeypatch):
    n = 1000
    losses = torch.rand(n, generator=torch.Generator().manual_seed(1)) * 3
    method = spl.SelfPacedLearning(TrainConfig(model="m"))
    labels = torch.zeros(n, dtype=torch.int64)
    monkeypatch.setattr(method, "score", lambda trainer, **kw: types.SimpleNamespace(losses=losses, labels=labels))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    trainer = _trainer(n, 8)
    for epoch in range(4):
        kept, w = method.select(trainer, epoch, order)
        threshold = method.threshold0 * spl.MU**epoch
        assert set(kept.tolist()) == set(torch.nonzero(losses < threshold).squeeze(1).tolist())
        assert torch.all(w == 1) and kept.tolist() == [i for i in order.tolist() if losses[i] < threshold]
    assert method.admitted[0] == n // 2  # the first threshold: half the samples easy (Kumar et al., Sec. 4)
    assert method.admitted == sorted(method.admitted)  # the threshold grows by mu = 1.3 per epoch


def test_self_paced_run_trains_fewer_steps_and_counts_its_scoring_passes(tmp_path):
    base = train(cfg(epochs=3), tmp_path / "base")
    ours = train(cfg(method="self-paced-learning", epochs=3), tmp_path / "spl")
    assert ours["steps"] < base["steps"] == 18
    assert ours["extra_passes"] == 3 and 0 < ours["extra_wall_time_s"] < ours["wall_time_s"]
    assert ours["admitted_per_epoch"][0] == 96  # half of 192


def test_dih_is_an_ema_of_the_loss_change_and_selects_the_top_k():
    n = 100
    method = dih_curriculum.DIHCurriculum(TrainConfig(model="m"))
    trainer = _trainer(n, 300, batch=1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    kept, _ = method.select(trainer, 0, order)
    assert torch.equal(kept, order)  # warm start: nothing seen yet, the first episode keeps all
    l0, l1, l2 = torch.rand(n), torch.rand(n), torch.rand(n)
    everyone = torch.arange(n)
    method.observe_losses(trainer, everyone, l0)
    assert torch.allclose(method.dih, l0)  # the first observation is the loss
    method.observe_losses(trainer, everyone, l1)
    method.observe_losses(trainer, everyone[:50], l2[:50])  # only the trained samples are updated
    expect = 0.9 * l0 + 0.1 * (l1 - l0).abs()
    expect[:50] = 0.9 * expect[:50] + 0.1 * (l2[:50] - l1[:50]).abs()
    assert torch.allclose(method.dih, expect)
    assert dih_curriculum.subset_fraction(0.0) == 1.0
    assert dih_curriculum.subset_fraction(0.999) == pytest.approx(0.9**10)  # 12 episode ends: 11 episodes
    assert dih_curriculum.subset_fraction(12 / 300) == pytest.approx(0.9**2)  # episode [10, 15)
    kept, w = method.select(trainer, 12, order)
    top = set(torch.argsort(expect, descending=True)[:81].tolist())
    assert set(kept.tolist()) == top and torch.all(w == 1)


def test_minimax_greedy_trades_hardness_for_diversity():
    # two tight groups of near-duplicates; the hardest samples are all in group A
    feats = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    sim = (feats @ feats.t()).clamp(min=0)
    hardness = torch.tensor([3.0, 2.9, 2.8, 1.0, 0.9, 0.8])
    assert minimax_curriculum.greedy(hardness, sim, 2, 0.0).tolist() == [0, 1]  # hard only
    assert minimax_curriculum.greedy(hardness, sim, 2, 1.0).tolist() == [0, 3]  # hard yet diverse
    k, lam = zip(*(minimax_curriculum.schedule(p / 10) for p in range(11)), strict=True)
    assert k[0] == pytest.approx(0.4) and k[-1] == 1.0 and list(k) == sorted(k)  # subsets grow ...
    assert lam[0] == 1.0 and lam[-1] == pytest.approx(0.1) and list(lam) == sorted(lam, reverse=True)  # ...


def test_minimax_run_selects_growing_class_balanced_subsets(tmp_path):
    trainer = Trainer(cfg(method="minimax-curriculum", epochs=5), tmp_path / "r")
    summary = trainer.train()
    sizes = summary["selected_per_epoch"]
    assert sizes == sorted(sizes) and sizes[0] < 0.5 * 192 and sizes[-1] == 192
    assert summary["extra_passes"] == sum(s < 192 for s in sizes)


def test_curriculumnet_density_subsets_put_the_dense_core_first():
    g = torch.Generator().manual_seed(0)
    core = torch.randn(60, 8, generator=g) * 0.3  # a class's clean images: close together
    noise = (torch.rand(40, 8, generator=g) - 0.5) * 8  # its noisy ones: spread out
    rank = curriculumnet.density_clusters(torch.cat([core, noise]))
    assert set(rank.tolist()) == {0, 1, 2}
    assert torch.all(rank[:60] == 0) and (rank[60:] > 0).float().mean() >= 0.9
    assert torch.equal(curriculumnet.kmeans_1d(torch.tensor([0.0, 0.1, 5.0, 5.2, 9.0, 9.1]), 3),
                       torch.tensor([0, 0, 1, 1, 2, 2]))


def test_curriculumnet_run_goes_from_clean_to_all(tmp_path, monkeypatch):
    kept: list[int] = []
    original = curriculumnet.CurriculumNet.select
    monkeypatch.setattr(curriculumnet.CurriculumNet, "select",
                        lambda self, t, e, o: (lambda r: (kept.append(len(r[0])), r)[1])(original(self, t, e, o)))
    summary = train(cfg(method="curriculumnet", epochs=4), tmp_path / "r")
    sizes = summary["subset_sizes"]
    assert kept[0] == kept[3] == 192 and kept[1] == sizes[0] < kept[2] == sizes[0] + sizes[1] < 192
    assert summary["extra_passes"] == 1


def test_label_similarity_targets_spread_over_similar_classes_then_one_hot(tmp_path):
    feats = torch.tensor([[1.0, 0, 0], [0.8, 0.6, 0], [0, 0, 1], [0, 1, 0]]).repeat(3, 1)
    labels = torch.tensor([0, 1, 2, 3]).repeat(3)
    p = label_similarity_curriculum.similarity_targets(feats, labels, 4)
    assert torch.allclose(p.sum(1), torch.ones(4)) and torch.equal(p.argmax(1), torch.arange(4))
    assert p[0, 1] > p[0, 2] and p[1, 0] > p[1, 2]  # mass on the similar class
    trainer = Trainer(cfg(method="label-similarity-curriculum", epochs=2), tmp_path / "r")
    method = trainer.methods.items[0]
    method.stage_start(trainer, trainer.plan[0], True)
    y = torch.tensor([0, 3, 9])
    method.step_start(trainer, 0.0)
    start = trainer.methods.targets(trainer, y)
    assert torch.allclose(start, method.similarity[y]) and torch.allclose(start.sum(1), torch.ones(3))
    method.step_start(trainer, 0.25)
    half = trainer.methods.targets(trainer, y)
    assert torch.allclose(half, 0.5 * torch.nn.functional.one_hot(y, 10) + 0.5 * method.similarity[y])
    method.step_start(trainer, 0.5)
    assert torch.equal(trainer.methods.targets(trainer, y), y)  # one-hot (class indices) from ANNEAL on
    with pytest.raises(UserError, match="smoothing"):
        Trainer(cfg(method="label-similarity-curriculum", augregs=True, epochs=2), tmp_path / "s")


def test_scoring_refuses_a_model_without_timm_heads():
    method = spl.SelfPacedLearning(TrainConfig(model="m"))
    trainer = types.SimpleNamespace(model=torch.nn.Linear(4, 2), device=torch.device("cpu"), dist=None,
                                    cfg=types.SimpleNamespace(model="mlp"))
    with pytest.raises(UserError, match="forward_head"):
        method.score(trainer)
