"""AutoProg (Li et al., "Automated Progressive Learning for Efficient Training of Vision Transformers", CVPR'22,
Sec. 3-4 and Algorithm 2; release changlin31/AutoProg ``main_prog.py``) as a method of the engine, for timm's
VisionTransformer (DeiT-Tiny / -Small; the release runs VOLO only).

Training is split into the release's 4 equal stages (``repro.core.autoprog.progressive_schedule`` with the
hyper-parameters of ``scripts/train_autoprog.sh``). At the start of each stage but the last, the network grows
by MoGrow to the *elastic supernet* of the stage's candidates (``search_space``: sizes and depths), which is
trained one-shot for the first ``SEARCH_FRACTION`` of the stage with a random candidate per step; its momentum
(EMA) copy estimates every candidate's training loss 5 times over the last search epoch, and the candidate
furthest below the fitted loss-vs-time trend becomes the stage's network (``choose``), inheriting the
supernet's blocks; it trains for the rest of the stage. The last stage grows to the full network (MoGrow). Each
growth starts the optimizer afresh, as the release does. RandAug m follows the stages (4, 6, 7, 9 at m = 9);
drop path rises from 0 to the run's value over the stages, linearly over the active blocks as timm's stochastic
depth (the release's ``dp_scale 0``), the final value during the search (the release's "auto grow uses final
AugReg").

Choices, said here (the mechanisms' own are in :mod:`repro.models.autoprog`):

* the data pipeline delivers the run's final size and the network resizes its input to the chosen size
  (``repro.models.elastic_vit``; the release rebuilds its loader at each size): the curriculum's sizes are not
  known before the searches choose them;
* the search lasts ``SEARCH_FRACTION = 2 / 25`` of each stage: the release's 2 search epochs of a 25-epoch stage
  (100 epochs, 4 stages), kept as a fraction so that the 300-epoch and the smoke runs search in proportion;
* the momentum network is the engine's EMA with a horizon of 2 epochs (decay ``1 - 1 / (2 x steps per
  epoch)``): the release's slowest EMA, 0.9996 with 1251 steps per epoch (batch 1024), i.e. 1 / 2500 per step;
  a fixed 0.9996 would keep a short (smoke) run's momentum network at its initialisation;
* candidate losses are estimated on ``SEARCH_IMAGES`` training images (at most an eighth of the data set, a
  fixed random subset) with the evaluation transform (the release: 50 batches of its search loader), the same
  images at every estimate;
* random erasing stays at the run's value (the release's ``re_scale 0`` raises it over the stages; Table 24's
  0.25 is not grown here), and the estimates' compute is outside the training clock (the engine times steps).
"""

from __future__ import annotations

from typing import Any

from repro.core.autoprog import progressive_schedule
from repro.core.curriculum import CurriculumSpec, Resolution
from repro.methods import Method, register

STAGES = 4
SEARCH_FRACTION = 2 / 25
ESTIMATES = 5  # the release's last search epoch: before it and at 4 evenly spaced steps (eval_times=4)
SEARCH_IMAGES = 1024
EMA_HORIZON_EPOCHS = 2.0

# RandAug m per stage at the final m = 9 (aa_scale 0.5): the engine scales it with the run's m
_MAGNITUDES = tuple(s.magnitude for s in progressive_schedule(STAGES, final_size=224, depth=12, magnitude=9.0,
                                                              drop_path=0.0, reprob=0.0, num_stages=STAGES))

SPEC = CurriculumSpec(
    name="autoprog", axis="epoch", boundaries=tuple(i / STAGES for i in range(STAGES + 1)),
    resolutions=(Resolution.final(),) * STAGES, magnitude=_MAGNITUDES, linear_magnitude=False, budget=300,
    description="AutoProg: 4 equal stages; size and depth grown by search at each stage start, RandAug m per stage",
    source="Li et al., CVPR'22, Algorithm 2; changlin31/AutoProg scripts/train_autoprog.sh",
)


@register
class AutoProg(Method):
    name = "autoprog"
    paper = "Li et al., AutoProg, CVPR'22: MoGrow + one-shot elastic-supernet search of the growth schedule"
    schedule = SPEC

    def __init__(self, cfg: Any) -> None:
        from repro.models.elastic_vit import require_vit

        super().__init__(cfg)
        require_vit(cfg.model, self.name)
        self.stage = self.size = self.depth = 0  # the current stage and network
        self.search: dict[str, Any] | None = None  # the running search: candidates, window, estimates
        self._sampler: Any = None
        self._images: Any = None

    def settings(self, cfg: Any) -> dict[str, Any]:
        return {"model_ema": True}  # MoGrow grows from the momentum network

    # -- schedule -------------------------------------------------------------------------------------------
    def _stages(self, trainer: Any) -> list[Any]:
        return progressive_schedule(STAGES, final_size=self.cfg.final_size, depth=len(trainer.model.blocks),
                                    magnitude=9.0, drop_path=self.cfg.drop_path, reprob=self.cfg.reprob,
                                    num_stages=STAGES)

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        from repro.core.autoprog import search_space
        from repro.models import autoprog as grow
        from repro.models.elastic_vit import make_elastic

        for model in (trainer.model, trainer.ema.module):
            make_elastic(model)
        if trainer.dist.world > 1 and not getattr(trainer.ddp_model, "find_unused_parameters", False):
            # the supernet's skipped blocks get no gradient in a step
            trainer.ddp_model = trainer.dist.wrap(trainer.model, trainer.device, find_unused_parameters=True)
        n_batches = trainer.n_train / stage.batch_size
        trainer.ema.decay = 1.0 - 1.0 / max(1.0, EMA_HORIZON_EPOCHS * n_batches)
        plan = self._stages(trainer)
        k = self.stage = stage.index
        if not fresh:  # resumed inside the stage: the saved network (weights come from the checkpoint)
            self._apply(trainer)
            return
        if k == 0:
            self.size, self.depth = plan[0].size, plan[0].depth
        sizes, depths = [s.size for s in plan], [s.depth for s in plan]
        if k < STAGES - 1:
            cand_sizes, cand_depths = search_space(k, sizes, depths, self.size, self.depth)
            if (cand_sizes[-1], cand_depths[-1]) == (self.size, self.depth):
                self.search = None
            else:
                grow.mogrow(trainer.model, trainer.ema.module, self.depth, cand_depths[-1])
                width = stage.end - stage.start
                self.search = {"sizes": cand_sizes, "depths": cand_depths, "end": stage.start + SEARCH_FRACTION * width,
                               "estimate_at": [stage.start + SEARCH_FRACTION * width * (1 - i / (2 * (ESTIMATES - 1)))
                                               for i in reversed(range(ESTIMATES))],
                               "estimates": {}, "taken": 0, "sampler": {"step": 0}}
                trainer.optimizer.state.clear()
        else:
            if self.depth != depths[-1]:
                grow.mogrow(trainer.model, trainer.ema.module, self.depth, depths[-1])
                trainer.optimizer.state.clear()
            self.size, self.depth, self.search = sizes[-1], depths[-1], None
            trainer.log.info(f"AutoProg: stage {k + 1} trains the full network, depth {self.depth} at "
                             f"{self.size}x{self.size}")
        self._apply(trainer)

    def _apply(self, trainer: Any) -> None:
        """Put model and momentum network in the method's current state (the sub-network, its input size, drop
        path, the supernet sampler while a search runs)."""
        from repro.core.autoprog import subnet_blocks
        from repro.models import autoprog as grow
        from repro.models.elastic_vit import set_active

        plan = self._stages(trainer)
        k = self.stage
        if self._sampler is not None:
            self._sampler.remove()
            self._sampler = None
        if self.search is not None:
            depths = self.search["depths"]
            for model in (trainer.model, trainer.ema.module):
                set_active(model, blocks=subnet_blocks(depths[0], depths[-1], depths[-1]), size=None)
            self._sampler = grow.SupernetSampler(trainer.model, self.search["sizes"], depths, seed=self.cfg.seed + k)
            self._sampler.load_state_dict(self.search["sampler"])
            _set_drop_path(trainer.model, plan[-1].drop_path, depths[-1])
        else:
            for model in (trainer.model, trainer.ema.module):
                set_active(model, blocks=list(range(self.depth)), size=self.size)
            _set_drop_path(trainer.model, plan[k].drop_path, self.depth)

    def step_start(self, trainer: Any, fraction: float) -> None:
        if self.search is None:
            return
        from repro.core.autoprog import choose, subnet_blocks
        from repro.models import autoprog as grow

        s = self.search
        self._sampler_state()
        while s["taken"] < ESTIMATES and fraction >= s["estimate_at"][s["taken"]]:
            for key, loss in grow.candidate_losses(trainer.ema.module, s["sizes"], s["depths"],
                                                   self._search_batches(trainer)).items():
                s["estimates"].setdefault(f"{key[0]}x{key[1]}", []).append(loss)
            s["taken"] += 1
        if fraction < s["end"]:
            return
        estimates = {tuple(int(v) for v in k.split("x")): losses for k, losses in s["estimates"].items()}
        size, depth = choose(estimates)  # type: ignore[arg-type]
        grow.keep_subnet(trainer.model, trainer.ema.module, subnet_blocks(s["depths"][0], s["depths"][-1], depth))
        trainer.optimizer.state.clear()
        trainer.log.info(f"AutoProg: stage {self.stage + 1} trains depth {depth} "
                         f"at {size}x{size} (candidates {s['sizes']} x {s['depths']})")
        self.size, self.depth, self.search = size, depth, None
        self._apply(trainer)

    def _sampler_state(self) -> None:
        if self.search is not None and self._sampler is not None:
            self.search["sampler"] = self._sampler.state_dict()

    def _search_batches(self, trainer: Any) -> list[Any]:
        """The training images every candidate is estimated on: a fixed random subset drawn from the run's seed
        (an image folder lists its classes in order), with the evaluation transform."""
        if self._images is None:
            import torch

            from repro.data.transforms import EvalDataset, eval_transform

            data = EvalDataset(trainer.train_set.base, eval_transform(self.cfg.final_size, *trainer._norm,
                                                                      trainer._crop_pct))
            n = min(SEARCH_IMAGES, max(1, len(data) // 8))
            chosen = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.cfg.seed))[:n]
            items = [data[i] for i in chosen.tolist()]
            xs, ys = torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])
            self._images = [(xs[a:a + 128].to(trainer.device), ys[a:a + 128].to(trainer.device))
                            for a in range(0, n, 128)]
        return self._images

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._sampler_state()
        return {"stage": self.stage, "size": self.size, "depth": self.depth, "search": self.search}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.stage, self.size, self.depth = int(state["stage"]), int(state["size"]), int(state["depth"])
            self.search = state["search"]


def _set_drop_path(model: Any, rate: float, depth: int) -> None:
    """timm's stochastic depth of a ``depth``-block network: rate ``i / (depth - 1) x rate`` at block i (blocks
    built without a DropPath, i.e. at rate 0, stay without)."""
    for i, blk in enumerate(model.blocks):
        for dp in (blk.drop_path1, blk.drop_path2):
            if hasattr(dp, "drop_prob"):
                dp.drop_prob = rate * min(i, depth - 1) / max(depth - 1, 1)

