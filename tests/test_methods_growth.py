"""AutoProg and Budgeted ViT in the engine on a tiny timm ViT: each grows its network at the planned steps
(AutoProg: depth and input size by MoGrow and the supernet search at each stage; Budgeted ViT: heads, MLP width
and tokens by its budget), and an interrupted run resumes bit-identically (mid-search included)."""

from __future__ import annotations

import pytest
from test_train_engine import assert_same_run, records, without_times

from repro.core.autoprog import progressive_schedule
from repro.methods import autoprog as autoprog_method
from repro.models import elastic_vit
from repro.train.config import ConfigError, TrainConfig
from repro.train.engine import train

# timm's test_vit: 6 blocks, 2 heads, 192 MLP units; 28^2 inputs in 4^2 patches
TINY = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=192,
            max_val_images=64, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, log_every_steps=2,
            crop_scale=(0.35, 1.0), eval_every_epochs=1.0, seed=3, drop_path=0.1)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


@pytest.fixture
def forwards(monkeypatch):
    """(active blocks, tokens, heads, MLP units) of every training forward pass of the trained network."""
    seen: list[tuple[int, int, int | None, int | None]] = []
    original = elastic_vit.ElasticBlocks.forward

    def spy(self, x):
        if self.training:
            blk = self[0]
            seen.append((len(self) if self.active is None else len(self.active), x.shape[1],
                         blk.attn.active_heads, blk.mlp.active_hidden))
        return original(self, x)

    monkeypatch.setattr(elastic_vit.ElasticBlocks, "forward", spy)
    return seen


def _size(tokens: int) -> int:
    return int(round((tokens - 1) ** 0.5)) * 4


def test_autoprog_grows_depth_and_size_at_the_planned_steps(tmp_path, forwards, monkeypatch):
    monkeypatch.setattr(autoprog_method, "SEARCH_FRACTION", 0.5)  # a 3-step search in each 6-step stage
    summary = train(cfg(method="autoprog", epochs=4), tmp_path / "run")
    stages = summary["stages"]
    assert [s["steps"] for s in stages] == [6, 6, 6, 6] and len(forwards) == 24
    plan = progressive_schedule(4, final_size=28, depth=6, magnitude=9, drop_path=0.1, reprob=0.0)
    assert [s.size for s in plan] == [16, 20, 24, 28] and [s.depth for s in plan] == [3, 4, 5, 6]
    nets = [(d, _size(t)) for d, t, _, _ in forwards]
    chosen = []
    for k, stage in enumerate(stages):
        first = stage["first_step"]
        mine = nets[first:first + 6]
        if k < 3:  # the supernet search: random candidates for the first half of the stage
            search, rest = mine[:3], mine[3:]
            assert len(set(rest)) == 1, f"stage {k + 1} trains one network after its search: {mine}"
            chosen.append(rest[0])
            assert all(d >= chosen[k - 1][0] for d, _ in search) if k else True
        else:
            assert set(mine) == {(6, 28)}  # the last stage: the full network at the final size
            chosen.append(mine[0])
    assert [d for d, _ in chosen] == sorted(d for d, _ in chosen)  # depth only grows
    assert [s for _, s in chosen] == sorted(s for _, s in chosen)  # and so does the input size
    assert chosen[0] != (3, 16) or chosen[1] != (3, 16)  # the search moved away from the smallest network
    assert summary["top1"] >= 0


def test_autoprog_resumes_bit_identically_mid_search(tmp_path, monkeypatch):
    monkeypatch.setattr(autoprog_method, "SEARCH_FRACTION", 0.5)
    kw = dict(method="autoprog", epochs=4)
    reference = train(cfg(**kw), tmp_path / "a")
    for stop in (7, 14, 20):  # inside the searches of stages 2 and 3, and in the last stage
        with pytest.raises(KeyboardInterrupt):
            train(cfg(**kw, stop_after_steps=stop), tmp_path / "b")
    resumed = train(cfg(**kw), tmp_path / "b")
    for key in ("top1", "top5", "val_loss", "steps", "top1_ema"):
        assert resumed[key] == reference[key]
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_budgeted_vit_grows_heads_mlp_and_tokens_within_its_budget(tmp_path, forwards):
    from repro.methods.budgeted_vit import BudgetedViT

    config = cfg(method="budgeted-vit", epochs=3, budget_epochs=2.4)
    summary = train(config, tmp_path / "run")
    steps = summary["steps"]
    assert len(forwards) == steps == 18
    method = BudgetedViT(config)
    import timm

    method.stage_start(type("T", (), {"model": timm.create_model("test_vit", patch_size=4, img_size=28,
                                                                  dynamic_img_size=True), "ema": None})(), None, True)
    levels = method.levels
    assert [(lv.heads, lv.mlp_hidden, lv.size) for lv in levels] == [(1, 64, 16), (2, 128, 24), (2, 192, 28)]
    assert sum(lv.epochs * lv.cost for lv in levels) == pytest.approx(2.4)
    for step, (depth, tokens, heads, hidden) in enumerate(forwards):
        lv = levels[method.level_at(step / steps)]
        assert (heads, hidden, _size(tokens)) == (lv.heads, lv.mlp_hidden, lv.size), step
        assert depth == 6
    assert [method.level_at(s / steps) for s in range(steps)] == sorted(method.level_at(s / steps)
                                                                       for s in range(steps))
    assert {method.level_at(s / steps) for s in range(steps)} == {0, 1, 2}
    with pytest.raises(ConfigError, match="budget_epochs"):
        BudgetedViT(cfg(method="budgeted-vit", epochs=3))
    with pytest.raises(ConfigError, match="sub-networks of a ViT"):
        BudgetedViT(cfg(model="ResNet-50", method="budgeted-vit", epochs=3, budget_epochs=2))
    with pytest.raises(ConfigError, match="sub-networks of a ViT"):
        autoprog_method.AutoProg(cfg(model="ResNet-50", method="autoprog"))


def test_budgeted_vit_resumes_bit_identically(tmp_path):
    kw = dict(method="budgeted-vit", epochs=3, budget_epochs=2.4, model_ema=True)
    reference = train(cfg(**kw), tmp_path / "a")
    for stop in (5, 11):  # inside the first and the second level
        with pytest.raises(KeyboardInterrupt):
            train(cfg(**kw, stop_after_steps=stop), tmp_path / "b")
    resumed = train(cfg(**kw), tmp_path / "b")
    for key in ("top1", "top5", "val_loss", "steps", "top1_ema"):
        assert resumed[key] == reference[key]
    assert without_times(records(tmp_path / "a")) == without_times(records(tmp_path / "b"))
