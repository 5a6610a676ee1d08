"""The one training engine: baseline, EfficientTrain and EfficientTrain++ in a single process, resumable.

The run is planned on the curriculum (``repro.core.curriculum``): each stage gets its input size B, its batch
size (early large batch, Sec. 5.3), its peak LR (eq. 2) and a number of steps; the LR follows warm-up + cosine
on the curriculum's axis (compute for ET++, epochs for baseline/ET; Table 6 caption), and the RandAug magnitude
follows the curriculum per step. Stage switches happen in-process: the model's input size is switched (weights
and optimizer state kept) and only the data loader is rebuilt.

Methods are hook objects (``repro.methods``, whose docstring lists the hook points) called at the stage
starts, before each step, on the samples of each epoch, on the per-sample losses and after training; the
engine computes per-sample losses (the mean of the weighted losses is what it optimises). A method that
selects samples makes the engine train epoch by epoch, on nominal epochs (see :class:`SelectedEpoch`).

Data are a deterministic stream of per-epoch permutations; the loader is asked for ``(index, B, m, seed)`` keys
(``repro.data.transforms``), so a resumed run sees exactly the samples and augmentations of an uninterrupted
one. Checkpoints (model, optimizer, scaler, EMA, step, stream position, RNG states, replay buffer) are written
atomically at stage boundaries, every ``checkpoint_minutes`` and on preemption; resume takes the newest one that
matches its checksum and fits this trainer (validated before anything is restored). The run directory is locked
while the trainer runs; non-finite weights are never saved, and a non-finite final result writes no summary.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import itertools
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from repro.core.curriculum import REFERENCE_SIZE, Curriculum, StageSizeError, build
from repro.core.replay import ReplayBuffer
from repro.data.datasets import build_dataset
from repro.data.transforms import (
    FMNIST_MEAN,
    FMNIST_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Augment,
    CurriculumDataset,
    CurriculumTransform,
    EvalDataset,
    eval_transform,
)
from repro.errors import UserError
from repro.launch.rundir import RunLock, write_json_atomic
from repro.launch.signals import Paused, stop_if_preempted
from repro.methods import Methods
from repro.train import checkpoint as ckpt
from repro.train.config import ConfigError, TrainConfig
from repro.train.distributed import Dist, init_distributed, process_rank
from repro.train.log import MetricsLog
from repro.train.model import build_model, set_input_size
from repro.train.progress import PlanProgress
from repro.train.schedule import StagePlan, StepSchedule
from repro.train.timing import TrainClock


class NonFiniteLoss(UserError):
    """The loss became NaN/inf: stop (retrying the same run would diverge the same way)."""


class NonFiniteResult(UserError):
    """The weights or the final metrics became NaN/inf (e.g. on the last step, after the last checked loss)."""


# what a checkpoint must hold for this trainer to resume from it exactly
STATE_KEYS = frozenset({"step", "position", "clock", "model", "optimizer", "scaler", "ema", "replay", "rng",
                        "metrics_lines", "input_size", "stage_switch_seconds", "methods", "selection"})


def _sample_seed(seed: int, position: int | str) -> int:
    digest = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


class Stream:
    """The training data as an endless sequence of per-epoch permutations: position p -> sample index.

    One epoch's permutation is cached (the last one drawn): 8 bytes per image, 10 MB for IN-1K's 1.28M. At
    IN-22K's 14M it is 112 MB per process and a ~0.3 s draw at each epoch boundary; a stateless permutation
    (e.g. a Feistel network on the position) would be O(1) but would change every key, hence resume.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        return self._perm

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of epoch ``epoch`` (a copy: a method may keep it)."""
        return self._permutation(epoch).clone()

    def indices(self, start: int, stop: int, step: int = 1) -> list[int]:
        """The sample indices at positions ``range(start, stop, step)``, one slice per epoch touched."""
        out: list[int] = []
        p = start
        while p < stop:
            epoch, offset = divmod(p, self.n)
            end = min(stop, (epoch + 1) * self.n)
            out += self._permutation(epoch)[offset : offset + end - p : step].tolist()
            p += -(-(end - p) // step) * step  # the first position of the next epoch on this stride
        return out


class SelectedEpoch:
    """The samples a method kept of epoch ``epoch`` (``Method.select``), in the stream's position space: epoch e
    still owns positions ``[e n, (e + 1) n)`` (so every position keeps its augmentation seed), its kept samples
    sit at the first ``len(indices)`` of them and a batch never straddles two epochs (the next epoch's
    selection needs this epoch's losses; timm's loader drops the last incomplete batch the same way).

    Progress is nominal: kept sample k of epoch e stands at ``e n + k n / len(indices)`` nominal samples, so the
    curriculum, the RandAug m and the LR follow epochs as they would unpruned, and a pruned epoch takes fewer
    steps (InfoBatch's saving)."""

    def __init__(self, epoch: int, n: int, indices: torch.Tensor, weights: torch.Tensor) -> None:
        if len(indices) != len(weights) or not 0 < len(indices) <= n:
            raise UserError(f"a method selected {len(indices)} samples with {len(weights)} weights of an epoch of "
                            f"{n}; select 1 to {n} samples, one weight each")
        self.epoch, self.n, self.base = epoch, n, epoch * n
        self.indices, self.weights = indices.to(torch.int64), weights.to(torch.float32)

    def indices_at(self, start: int, stop: int, step: int = 1) -> list[int]:
        return self.indices[start - self.base : stop - self.base : step].tolist()

    def weights_at(self, start: int, stop: int, step: int = 1) -> torch.Tensor:
        return self.weights[start - self.base : stop - self.base : step]

    def nominal(self, position: int) -> float:
        """Nominal samples consumed at ``position`` (inside this epoch)."""
        return self.base + (position - self.base) * self.n / len(self.indices)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "indices": self.indices, "weights": self.weights}


class _SelectedStream:
    """``Stream.indices`` over one selected epoch (what :class:`KeySampler` reads)."""

    def __init__(self, epoch: SelectedEpoch) -> None:
        self.epoch = epoch

    def indices(self, start: int, stop: int, step: int = 1) -> list[int]:
        return self.epoch.indices_at(start, stop, step)


class KeySampler(torch.utils.data.Sampler):  # type: ignore[type-arg]
    """This rank's share of each fresh batch of a stage as a list of ``(index, B, m, seed)`` keys, computed on the
    fly from the stream position: O(batch) memory and O(1) start-up whatever the stage's length.

    Fresh batch ``k`` is trained at step ``first_step + k (n_replay + 1)`` (the replays of Sec. 5.3 sit in between)
    and holds the stream positions ``position + k batch_size ...``; the rank takes every ``world``-th of them.
    ``magnitude`` maps a step to its RandAug m. A stage with a circular low-pass filter (Table 2) appends its
    radius to every key. Iterated in the main process (also with loader workers).
    """

    def __init__(self, stream: Stream | _SelectedStream, *, position: int, first_step: int, end_step: int,
                 batch_size: int, resolution: int, n_replay: int, seed: int, magnitude: Any, rank: int = 0,
                 world: int = 1, lowpass: float | None = None) -> None:
        self.stream, self.position, self.first_step = stream, position, first_step
        self.batch_size, self.resolution, self.stride = batch_size, resolution, n_replay + 1
        self.seed, self.magnitude, self.rank, self.world = seed, magnitude, rank, world
        self.batches = max(0, -(-(end_step - first_step) // self.stride))
        self.extra = () if lowpass is None else (lowpass,)

    def batch(self, k: int) -> list[tuple[Any, ...]]:
        start = self.position + k * self.batch_size
        positions = range(start + self.rank, start + self.batch_size, self.world)
        m = self.magnitude(self.first_step + k * self.stride)
        indices = self.stream.indices(positions.start, positions.stop, positions.step)
        return [(i, self.resolution, m, _sample_seed(self.seed, p), *self.extra)
                for i, p in zip(indices, positions, strict=True)]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (self.batch(k) for k in range(self.batches))

    def __len__(self) -> int:
        return self.batches


def _leave_cores_to_workers(workers: int) -> None:
    """On CPU, give torch the cores the data-loader workers do not use: with torch's default of one thread per
    core, the workers and the model fight for cores and small-input steps (the curriculum's early stages)
    slow down, which hides the wall-time saving (2 cores: baseline/ET++ wall time 1.0x -> 1.3-1.6x)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - workers)))


def _check_optimizer(opt: str) -> None:
    from timm.optim import list_optimizers

    known = list_optimizers()
    if opt.lower().split("_")[-1] not in known:  # timm also takes a "lookahead_" prefix
        close = difflib.get_close_matches(opt.lower(), known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError("opt", f"unknown optimizer {opt!r}{hint}; timm has {len(known)}, e.g. adamw (Table 24), "
                          "lamb, sgd: see timm.optim.list_optimizers()")


def _takes(model: torch.nn.Module, device: torch.device, size: int) -> bool:
    """Whether ``model`` runs on a ``size`` x ``size`` image (eval mode: no RNG drawn, no statistics updated)."""
    was_training = model.training
    model.eval()
    try:
        set_input_size(model, size)
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=device))
        return True
    except Exception:  # noqa: BLE001 - whatever the model raises, it cannot train at this size
        return False
    finally:
        model.train(was_training)


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str | Path, *, cost_fn: Any = None,
                 resume: str | Path | None = None) -> None:
        settings = Methods(cfg).settings(cfg)  # the methods' recipes: the effective config is the run's
        cfg = TrainConfig.model_validate({**cfg.model_dump(), **settings}) if settings else cfg
        self.methods = Methods(cfg)
        self.cfg = cfg
        self.out = Path(out_dir)
        self.dist: Dist = init_distributed()
        # what can be refused is refused before anything is written to out_dir
        self.device = self._device()
        _check_optimizer(cfg.opt)
        if self.device.type == "cpu":
            _leave_cores_to_workers(cfg.workers)
        self._check_method_options()
        # self-supervised pre-training (Sec. 6.2, Table 15): the model computes its loss from the images alone
        self.pretraining = cfg.mae is not None
        if self.pretraining:
            for field in ("mixup", "cutmix"):
                if getattr(cfg, field) > 0:
                    raise ConfigError(field, "MAE pre-training has no labels to mix; set it to 0")
            if cfg.model_ema:
                raise ConfigError("model_ema", "MAE pre-training keeps no EMA of the weights (MAE's recipe); "
                                  "turn it off")
            if self.methods.wants_losses or self.methods.selects:  # MAE's loss is one value per batch
                raise ConfigError("method", f"{self.methods.label} weighs or selects samples by their losses; MAE "
                                  "pre-training has one reconstruction loss per batch, not one per sample")
        self.curriculum = self._curriculum(cfg.final_size, cost_fn)

        # data
        try:
            base_train = build_dataset(cfg.dataset, "train", cfg.data_root, cfg.max_train_images, undecoded=True)
            base_val = build_dataset(cfg.dataset, "val", cfg.data_root, cfg.max_val_images)
        except UserError as err:
            raise ConfigError("data_root" if cfg.data_root else "dataset", str(err)) from None
        self.num_classes = int(base_train.num_classes)
        if cfg.num_classes is not None:  # timm's --num-classes: a wider classifier than the labels need is fine
            if cfg.num_classes < self.num_classes:
                raise ConfigError("num_classes", f"{cfg.num_classes} is below the {self.num_classes} classes of "
                                  f"{cfg.dataset}; use at least {self.num_classes} (or leave it out)")
            self.num_classes = cfg.num_classes
        mean, std = (FMNIST_MEAN, FMNIST_STD) if cfg.dataset == "fashion-mnist" else (IMAGENET_MEAN, IMAGENET_STD)
        self.train_set = CurriculumDataset(
            base_train,
            CurriculumTransform(Augment(cfg.final_size, cfg.frequency_op or self.methods.frequency_op,
                                        tuple(cfg.crop_scale), 0.5,
                                        cfg.randaug_std, cfg.reprob, mean, std, randaug=cfg.augment == "randaug",
                                        draft=cfg.draft_decode, reduce_at_crop=cfg.reduce_at_crop,
                                        three_augment=cfg.augment == "3augment", simple_crop=cfg.crop == "simple")),
        )
        crop_pct = 1.0 if cfg.dataset == "fashion-mnist" else cfg.crop_pct
        self._base_val, self._norm, self._crop_pct = base_val, (mean, std), crop_pct
        self.eval_size = cfg.final_size  # a method may evaluate at another size (FixRes' test size)
        self.val_set = EvalDataset(base_val, eval_transform(cfg.final_size, mean, std, crop_pct))
        self.n_train = len(self.train_set)

        # plan
        schedule = StepSchedule.for_config(self.curriculum, cfg, self.n_train)
        # a method may replace the warm-up + cosine (Table 24) by its own LR factor on the same progress axis
        self.schedule = replace(schedule, lr_shape=self.methods.lr_schedule(cfg, schedule.lr_epochs))
        self.plan = self.schedule.plan
        if any(p.batch_size % self.dist.world for p in self.plan):
            raise UserError(f"the global batch must be divisible by the {self.dist.world} processes")
        self.total_steps = self.schedule.total_steps
        # each stage's first nominal sample: with sample selection progress is counted in nominal samples
        self.sample_starts = list(itertools.accumulate((p.steps * p.batch_size for p in self.plan), initial=0))
        self.cost_fn = cost_fn

        # model and optimisation
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, self.num_classes)
        if cfg.init_from is not None:  # a fine-tuning starts from another run's weights (before the EMA copies them)
            from repro.train.finetune import init_from_run

            try:
                init_from_run(self.model, cfg.init_from, cfg.init_weights == "ema", cfg.head_init_scale)
            except UserError as err:
                raise ConfigError("init_from", str(err).removeprefix("init_from: ")) from None
        self.model = self.model.to(self.device)
        self._check_input_sizes()
        if self.device.type == "cuda" and cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.layer_decay is not None and not callable(getattr(self.model, "group_matcher", None)):
            raise ConfigError("layer_decay", f"{cfg.model} has no layer grouping (timm's group_matcher) for "
                              "layer-wise LR decay; remove {layer_decay}")
        self.optimizer = self._optimizer(self.model)
        self.ddp_model = self.dist.wrap(self.model, self.device)
        self.ema = None
        if cfg.model_ema:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=cfg.model_ema_decay)
        use_amp = cfg.amp and self.device.type == "cuda"
        self.autocast_dtype = getattr(torch, cfg.amp_dtype) if use_amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp and cfg.amp_dtype == "float16")
        self.mixup = None
        if cfg.mixup > 0 or cfg.cutmix > 0:
            from timm.data import Mixup

            self.mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.smoothing,
                               num_classes=self.num_classes)
        self.replay = ReplayBuffer(cfg.replay_capacity, cfg.n_replay, seed=cfg.seed)

        # state
        self.step = 0
        self.position = 0  # samples of the stream consumed by fresh batches
        self.clock = TrainClock(self.device)
        self.resume = None if resume is None else Path(resume)
        self._resume_state = None if self.resume is None else self._read_resume(self.resume)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = MetricsLog(self.out, enabled=self.dist.is_main, wandb=cfg.wandb, config=cfg.model_dump(),
                              project=cfg.wandb_project, group=cfg.wandb_group)
        self.stage_switch_seconds: list[float] = []
        self.entered = -1  # the last stage whose stage_start hooks ran fresh
        self.selection: SelectedEpoch | None = None  # the current epoch's samples, when a method selects
        self._batch_keys: Any = None  # the current loader's sampler and first step (sample indices of a step)
        self._segment_end = 0  # the step the current loader's segment ends at
        self._resumed_mid_segment = False  # restored from a checkpoint saved inside a segment

    # -- helpers -------------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        if self.cfg.device == "auto":
            return torch.device("cuda", self.dist.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        try:
            device = torch.device(self.cfg.device)
        except RuntimeError:
            raise ConfigError("device", f"unknown device {self.cfg.device!r}; use auto, cpu, cuda or cuda:N") from None
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.type == "cuda" and not gpus:
            raise ConfigError("device", f"{self.cfg.device!r} needs a GPU, but torch sees none; use cpu (or auto)")
        if device.type == "cuda" and (device.index or 0) >= gpus:
            raise ConfigError("device", f"{self.cfg.device!r}: torch sees {gpus} GPU(s), cuda:0 to cuda:{gpus - 1}")
        return device

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        from timm.optim import create_optimizer_v2

        cfg = self.cfg
        # Adam-family and LAMB take Table 24's betas; other optimizers (SGD...) have none
        betas = {"betas": tuple(cfg.opt_betas)} if "adam" in cfg.opt or "lamb" in cfg.opt else {}
        # layer_decay: timm's param_groups_layer_decay; the loop applies each group's lr_scale
        return create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                   layer_decay=cfg.layer_decay, **betas)

    def replace_model(self, model: torch.nn.Module) -> None:
        """Train ``model`` from now on (a method growing or replacing the network at a stage start): the optimizer
        is rebuilt for its parameters and keeps the state (moments, step) of every parameter whose name and shape
        are unchanged; the EMA keeps its averages of those tensors and starts the new ones from ``model``."""
        model = model.to(self.device)
        old = {name: p for name, p in self.model.named_parameters()}
        optimizer = self._optimizer(model)
        for name, p in model.named_parameters():
            q = old.get(name)
            if q is not None and q.shape == p.shape and q in self.optimizer.state:
                optimizer.state[p] = {k: v.clone() if isinstance(v, torch.Tensor) else v
                                      for k, v in self.optimizer.state[q].items()}
        if self.ema is not None:
            from timm.utils import ModelEmaV3

            averaged = self.ema.module.state_dict()
            ema = ModelEmaV3(model, decay=self.cfg.model_ema_decay)
            fresh = ema.module.state_dict()
            ema.module.load_state_dict({k: averaged[k] if k in averaged and averaged[k].shape == v.shape else v
                                        for k, v in fresh.items()})
            self.ema = ema
        self.model, self.optimizer = model, optimizer
        self.ddp_model = self.dist.wrap(self.model, self.device)

    def set_eval_size(self, size: int) -> None:
        """Evaluate at ``size`` x ``size`` from now on (same crop ratio and normalisation)."""
        self.eval_size = size
        self.val_set = EvalDataset(self._base_val, eval_transform(size, *self._norm, self._crop_pct))

    def _check_method_options(self) -> None:
        """Engine options that a method's hooks cannot combine with (one line each)."""
        cfg, label = self.cfg, self.methods.label
        if cfg.n_replay and self.methods.wants_losses:
            raise ConfigError("n_replay", f"{label} weighs or scores samples by their loss, which a replayed batch "
                              "(Sec. 5.3) repeats without fresh samples; use {n_replay} 0 with it")
        if cfg.n_replay and self.methods.selects:
            raise ConfigError("n_replay", f"{label} selects the samples of each epoch; the replay buffer (Sec. 5.3) "
                              "would repeat batches across its epochs: use {n_replay} 0 with it")

    def _curriculum(self, final_size: int, cost_fn: Any = None) -> Curriculum:
        cfg = self.cfg
        try:
            return build(cfg.schedule or self.methods.schedule, epochs=cfg.epochs, final_size=final_size, cost=cost_fn,
                         adapt=cfg.adapt, reference_final=cfg.paper_final_size or REFERENCE_SIZE)
        except StageSizeError as err:
            linear = "" if cfg.adapt == "linear" else ", {adapt} linear (B scaled with the final size)"
            raise ConfigError("final_size", f"schedule {err.schedule!r} has a stage at B={err.b}, above the final "
                              f"size {final_size}; use {{final_size}} {err.needed} or more{linear} or another "
                              "{schedule}") from None

    def _check_input_sizes(self) -> None:
        """Refuse a curriculum with an input size the model cannot take (a patch grid or window that does not
        divide it), naming final sizes that work: the nearest whose every B the model takes."""
        final = self.cfg.final_size
        takes = functools.cache(lambda size: _takes(self.model, self.device, size))
        bad = [b for b in sorted({*self.curriculum.resolutions, final}) if not takes(b)]
        if not bad:
            return

        def works(size: int) -> bool:
            try:
                sizes = {size, *self._curriculum(size).resolutions}
            except ConfigError:
                return False
            return all(takes(b) for b in sorted(sizes, reverse=True))

        candidates = sorted(range(8, max(256, 2 * final) + 1), key=lambda s: (abs(s - final), s))
        near = sorted(itertools.islice(filter(works, candidates), 3))
        which = f"final sizes that work: {', '.join(map(str, near))}" if near else "no final size up to 256 works"
        raise ConfigError("final_size", f"{self.cfg.model} cannot take B={', '.join(map(str, bad))} of the "
                          f"{self.curriculum.name} curriculum at final size {final} (its patch grid); {which}")

    def stage_of(self, step: float) -> StagePlan:
        return self.schedule.stage_of(step)

    def nominal_step(self, position: int | None = None) -> float:
        """Where training stands on the plan: the step itself, or with sample selection the plan's step at the
        nominal samples consumed at ``position`` (default: now) -- fractional inside a stage."""
        if not self.methods.selects:
            return float(self.step)
        position = self.position if position is None else position
        if self.selection is not None and self.selection.base <= position < self.selection.base + self.n_train:
            samples = self.selection.nominal(position)
        else:
            samples = float(position)  # at an epoch boundary, before the epoch's selection
        for plan, start in zip(self.plan, self.sample_starts, strict=False):
            if samples < start + plan.steps * plan.batch_size:
                return plan.first_step + (samples - start) / plan.batch_size
        return float(self.total_steps) + (samples - self.sample_starts[-1]) / self.plan[-1].batch_size

    def _select_epoch(self) -> SelectedEpoch:
        """The current epoch's samples, asked of the selecting method when the epoch begins (kept in the
        checkpoint: the method's scores move on during the epoch)."""
        epoch = self.position // self.n_train
        if self.selection is None or self.selection.epoch != epoch:
            order = Stream(self.n_train, self.cfg.seed).order(epoch)
            chosen = self.methods.select(self, epoch, order)
            indices, weights = chosen if chosen is not None else (order, torch.ones(len(order)))
            self.selection = SelectedEpoch(epoch, self.n_train, indices, weights)
        return self.selection

    def _segment_steps(self, stage: StagePlan) -> int:
        """Steps from now to the end of ``stage``, or with sample selection to the end of the stage or of the
        epoch's kept samples, whichever comes first (0: only an incomplete batch is left of the epoch)."""
        if not self.methods.selects:
            return stage.first_step + stage.steps - self.step
        sel, bs = self._select_epoch(), stage.batch_size
        end = stage.first_step + stage.steps
        steps, position = 0, self.position
        while position + bs <= sel.base + len(sel.indices) and self.nominal_step(position) < end:
            steps, position = steps + 1, position + bs
        return steps

    def _loader(self, stage: StagePlan, start_step: int, end_step: int | None = None) -> Any:
        """Fresh batches of ``stage`` for steps ``start_step`` to ``end_step`` (default: the stage's end), as keys
        for the workers."""
        end_step = stage.first_step + stage.steps if end_step is None else end_step
        pending = self.replay.state_dict()["pending"] if self.cfg.n_replay else 0
        if self.methods.selects:
            stream: Stream | _SelectedStream = _SelectedStream(self._select_epoch())
            base_position, first = self.position, start_step

            def magnitude(step: int) -> float:
                nominal = self.nominal_step(base_position + (step - first) * stage.batch_size)
                return self.schedule.magnitude_at(stage.fraction(nominal))
        else:
            stream = Stream(self.n_train, self.cfg.seed)

            def magnitude(step: int) -> float:
                return self.schedule.magnitude_at(stage.fraction(step))
        sampler = KeySampler(stream, position=self.position,
                             first_step=start_step + pending, end_step=end_step,
                             batch_size=stage.batch_size, resolution=stage.resolution, n_replay=self.cfg.n_replay,
                             seed=self.cfg.seed, magnitude=magnitude, rank=self.dist.rank, world=self.dist.world,
                             lowpass=self.curriculum.stages[stage.index].lowpass)
        self._batch_keys = (sampler, start_step)
        workers = self.cfg.workers
        # A loader takes its workers' base seed from the global torch RNG, which drop path and others draw from
        # too. Its segment's first loader drew it before a mid-segment checkpoint; the loader that resumes there
        # must not draw again, or the resumed run's stream is shifted (the batches come from their keys alone).
        resumed, self._resumed_mid_segment = self._resumed_mid_segment, False
        return torch.utils.data.DataLoader(
            self.train_set, batch_sampler=sampler, num_workers=workers,
            persistent_workers=False, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            generator=torch.Generator().manual_seed(self.cfg.seed) if resumed else None,
        )

    # -- checkpoints ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "step": self.step,
            "position": self.position,
            "clock": self.clock.state_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "replay": self.replay.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
                "python": random.getstate(),
            },
            "metrics_lines": self.log.lines,
            "input_size": self.stage_of(self.nominal_step()).resolution,
            "stage_switch_seconds": list(self.stage_switch_seconds),
            "methods": {"entered": self.entered, "hooks": self.methods.state_dict()},
            "selection": self.selection.state_dict() if self.selection is not None else None,
            "mid_segment": self.step < self._segment_end,  # the segment's loader drew from the RNG already
        }

    def check_state(self, state: dict[str, Any]) -> None:
        """Raise :class:`~repro.train.checkpoint.UnusableCheckpoint` unless ``state`` restores this trainer
        completely: ``load_state_dict`` mutates as it goes, so a state that failed half-way would leave a trainer
        that is neither the checkpoint's nor a fresh one."""
        missing = STATE_KEYS - state.keys()
        if missing:
            raise ckpt.UnusableCheckpoint(f"missing {', '.join(sorted(missing))}")
        step = state["step"]
        if not isinstance(step, int) or not 0 <= step <= self.total_steps:
            raise ckpt.UnusableCheckpoint(f"step {step!r} is outside this run's 0..{self.total_steps}")
        _check_tensors("model", state["model"], self.model.state_dict())
        if self.ema is not None and state["ema"] is not None:
            _check_tensors("ema", state["ema"], self.ema.state_dict())
        kept = {"scaler": self.scaler.state_dict().keys(), "replay": self.replay.state_dict().keys(),
                "clock": self.clock.state_dict().keys(), "rng": {"torch", "cuda", "numpy", "python"},
                "methods": {"entered", "hooks"}}
        for what, keys in kept.items():
            if not isinstance(state[what], dict) or keys - state[what].keys():
                raise ckpt.UnusableCheckpoint(f"{what}: not the state this trainer keeps")
        groups, mine = state["optimizer"].get("param_groups"), self.optimizer.state_dict()["param_groups"]
        if not isinstance(groups, list) or [len(g.get("params", ())) for g in groups] != [
                len(g["params"]) for g in mine]:
            raise ckpt.UnusableCheckpoint("optimizer: its parameter groups do not match this model's")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.entered = int(state["methods"]["entered"])
        self.methods.load_state_dict(state["methods"]["hooks"])
        if self.entered >= 0:  # the architecture / regularisation of the stage the checkpoint was saved in
            self.methods.stage_start(self, self.plan[self.entered], fresh=False)
        sel = state["selection"]
        self.selection = None if sel is None else SelectedEpoch(int(sel["epoch"]), self.n_train, sel["indices"],
                                                                sel["weights"])
        self.step, self.position = int(state["step"]), int(state["position"])
        self.clock.load_state_dict(state["clock"])
        self.stage_switch_seconds = [float(t) for t in state["stage_switch_seconds"]]
        set_input_size(self.model, int(state["input_size"]))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.replay.load_state_dict(state["replay"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        kind, keys, pos, has_gauss, gauss = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
        random.setstate(_as_tuple(rng["python"]))
        self.log.truncate(int(state["metrics_lines"]))
        self._resumed_mid_segment = bool(state.get("mid_segment", False))  # absent from older checkpoints

    def save(self) -> None:
        """Rank 0 writes the checkpoint; under DDP with a replay buffer every other rank first writes its own
        buffer (its shard of the batches differs), so a checkpoint that exists always has its rank files.
        Non-finite weights are never saved: a resume would only carry the divergence on."""
        self._check_finite_weights()
        per_rank = self.dist.world > 1 and self.cfg.n_replay > 0
        if per_rank and not self.dist.is_main:
            ckpt.save_rank(self.out, self.step, self.dist.rank, {"replay": self.replay.state_dict()},
                           keep=self.cfg.keep_checkpoints)
        if per_rank:
            self.dist.barrier()
        if self.dist.is_main:
            ckpt.save(self.out, self.step, self.state_dict(), keep=self.cfg.keep_checkpoints)
        self.dist.barrier()

    # -- evaluation ----------------------------------------------------------------------------------------
    def _mask_generator(self, what: str) -> torch.Generator:
        """MAE's masks of one step or validation batch (``what``), from the run's seed alone: a resumed run draws
        the masks an uninterrupted one would, whatever else used the global RNG (loader start-up, drop path)."""
        seed = _sample_seed(self.cfg.seed, f"mask:{what}:{self.dist.rank}")
        return torch.Generator(device=self.device).manual_seed(seed)

    @torch.no_grad()
    def _reconstruction_loss(self, model: torch.nn.Module) -> dict[str, float]:
        """A pre-training run's validation metric: MAE's loss on the validation images at the final size, the
        masks of batch i the same at every evaluation."""
        idx = list(range(self.dist.rank, len(self.val_set), self.dist.world))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.val_set, idx), batch_size=256,
                                             num_workers=min(self.cfg.workers, 2))
        was_training = model.training
        model.eval()
        totals = torch.zeros(2, dtype=torch.float64)
        for i, (x, _) in enumerate(loader):
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                enabled=self.autocast_dtype is not None):
                loss = model(x.to(self.device), generator=self._mask_generator(f"val{i}"))
            totals += torch.tensor([loss.item() * len(x), len(x)], dtype=torch.float64)
        model.train(was_training)
        totals = self.dist.all_reduce_sum(totals)
        return {"val_loss": totals[0].item() / max(totals[1].item(), 1.0)}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module | None = None) -> dict[str, float]:
        model = model or self.model
        if self.pretraining:
            return self._reconstruction_loss(model)
        was_training = model.training
        model.eval()
        set_input_size(self.model, self.eval_size)
        if self.ema is not None:
            set_input_size(self.ema.module, self.eval_size)
        idx = list(range(self.dist.rank, len(self.val_set), self.dist.world))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.val_set, idx), batch_size=256,
                                             num_workers=min(self.cfg.workers, 2))
        totals = torch.zeros(4, dtype=torch.float64)
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                enabled=self.autocast_dtype is not None):
                logits = model(x).float()
            top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
            totals += torch.tensor([(top5[:, 0] == y).sum().item(), (top5 == y[:, None]).any(1).sum().item(),
                                    F.cross_entropy(logits, y, reduction="sum").item(), len(y)], dtype=torch.float64)
        totals = self.dist.all_reduce_sum(totals)
        set_input_size(self.model, self.stage_of(self.nominal_step()).resolution)
        if self.ema is not None:
            set_input_size(self.ema.module, self.stage_of(self.nominal_step()).resolution)
        model.train(was_training)
        n = max(totals[3].item(), 1.0)
        top1, top5, loss = (totals[i].item() / n for i in range(3))
        return {"top1": 100 * top1, "top5": 100 * top5, "val_loss": loss}

    def _eval_record(self, stage: StagePlan) -> dict[str, Any]:
        nominal = self.nominal_step()
        f = stage.fraction(nominal) if nominal < self.total_steps else 1.0
        with self.clock.excluded():  # its loader's workers are not training time
            record = {"kind": "eval", "step": self.step, "epoch": round(self.curriculum.epoch_at(f), 6),
                      "fraction": f, **self.evaluate()}
            if self.ema is not None:
                ema = self.evaluate(self.ema.module)
                record.update(top1_ema=ema["top1"], top5_ema=ema["top5"])
        return record

    def _check_finite_weights(self) -> None:
        models = {"weights": self.model, **({"EMA weights": self.ema} if self.ema is not None else {})}
        for what, model in models.items():
            bad = [name for name, t in model.state_dict().items()
                   if t.is_floating_point() and not bool(torch.isfinite(t).all())]
            if bad:
                raise NonFiniteResult(f"{what} are NaN/inf after step {self.step} ({len(bad)} tensors, e.g. "
                                      f"{bad[0]!r}); lower the learning rate or set clip_grad")

    def _read_resume(self, path: Path) -> dict[str, Any]:
        """The state of the checkpoint file ``resume`` names, refused (before anything is written) unless it is a
        repro checkpoint this trainer restores completely."""
        try:
            state = ckpt.read(path)
            self.check_state(state)
        except FileNotFoundError:
            raise ConfigError("resume", f"{path}: no such file; give a checkpoint-<step>.pt of a run") from None
        except Exception as err:  # noqa: BLE001 - whatever it is, it is not a checkpoint of this run
            raise ConfigError("resume", f"{path} is not a repro checkpoint of this run ({ckpt.why(err)}); give a "
                              "checkpoint-<step>.pt of a run of the same config") from None
        return state

    def _restore_from(self, path: Path, state: dict[str, Any]) -> None:
        """Resume from the checkpoint file ``path`` (``resume``): a checkpoint of another directory brings the
        metrics its run had written up to it."""
        main = self.dist.is_main
        if main and path.parent.resolve() != self.out.resolve() and not self.log.lines:
            source = path.parent / "metrics.jsonl"
            if source.is_file():
                lines = source.read_text().splitlines(keepends=True)[: int(state["metrics_lines"])]
                self.log.path.write_text("".join(lines))
                self.log.lines = len(lines)
        if self.dist.world > 1 and self.cfg.n_replay > 0 and not main:
            state["replay"] = ckpt.load_rank(path.parent, int(state["step"]), self.dist.rank)["replay"]
        self.load_state_dict(state)
        self.log.info(f"resumed from {path} at step {self.step} of {self.total_steps}")

    def restore(self) -> None:
        """Resume from the checkpoint file given as ``resume``, else from the newest usable checkpoint of the run
        directory, or start from step 0 -- saying so, with the metrics of the earlier attempt kept aside, when the
        directory held any. Call under the run directory's lock."""
        if self.resume is not None and self._resume_state is not None:
            state, self._resume_state = self._resume_state, None
            self._restore_from(self.resume, state)
            return
        main = self.dist.is_main
        if main:
            stale = ckpt.remove_stale(self.out)
            if stale:
                self.log.info(f"removed {len(stale)} stale checkpoint temp file(s) of an interrupted write")
        found = len(ckpt.checkpoints(self.out))
        latest = ckpt.load_latest(self.out, warn=self.log.warn, validate=self.check_state, keep_rejected=main)
        if latest is not None:
            if self.dist.world > 1 and self.cfg.n_replay > 0 and not main:
                latest["replay"] = ckpt.load_rank(self.out, int(latest["step"]), self.dist.rank)["replay"]
            self.load_state_dict(latest)
            self.log.info(f"resumed from step {self.step} of {self.total_steps}")
            return
        kept = self.log.restart()
        if main and (found or kept):
            why = f"none of the {found} checkpoint(s) is usable" if found else "no checkpoint to resume from"
            self.log.warn(f"{self.out}: {why}: training starts from step 0"
                          + (f"; the earlier metrics.jsonl is kept as {kept.name}" if kept else ""))

    # -- the loop ------------------------------------------------------------------------------------------
    def _pause_due(self, progress: PlanProgress) -> bool:
        """Whether to stop here with a checkpoint (``stop_after_steps``, ``pause_at_fraction`` of the compute)."""
        cfg = self.cfg
        return ((cfg.stop_after_steps is not None and self.step >= cfg.stop_after_steps)
                or (cfg.pause_at_fraction is not None and progress.done(self.nominal_step()) >= cfg.pause_at_fraction))

    def train(self) -> dict[str, Any]:
        with RunLock(self.out) if self.dist.is_main else contextlib.nullcontext():
            return self._train()

    def _train(self) -> dict[str, Any]:
        self.restore()
        self.log.info(f"{self.methods.label} {self.curriculum.name}: {len(self.plan)} stages, "
                      f"{self.total_steps} steps, B {[p.resolution for p in self.plan]}, device {self.device}, "
                      f"{self.dist.world} process(es)")
        planned, run = self.curriculum.equivalent_epochs, self._equivalent_epochs()
        if abs(run / planned - 1) > 0.01:
            self.log.info(f"whole steps per stage: {run:.4g} equivalent epochs for the {planned:.4g} planned")
        criterion = _criterion(self.cfg, self.mixup is not None)
        progress = PlanProgress(self.plan, self.nominal_step())  # the ETA times this process's steps only
        last_save = time.monotonic()
        eval_every = self.cfg.eval_every_epochs
        while self.nominal_step() < self.total_steps:
            stage = self.stage_of(self.nominal_step())
            t0 = time.perf_counter()
            set_input_size(self.model, stage.resolution)
            if self.ema is not None:
                set_input_size(self.ema.module, stage.resolution)
            if stage.index > self.entered:  # hooks first, then the optimizer state is the stage's
                self.methods.stage_start(self, stage, fresh=True)
                self.entered = stage.index
            if self.step == stage.first_step and not self.methods.selects:
                self.replay.load_state_dict({**self.replay.state_dict(), "items": [], "pending": 0})
            steps = self._segment_steps(stage)
            if steps == 0:  # an incomplete batch is all that is left of the epoch's samples: the next epoch
                self.position = (self.position // self.n_train + 1) * self.n_train
                continue
            end_step = self._segment_end = self.step + steps
            self.clock.stage_started()
            batches = iter(self._loader(stage, self.step, end_step))
            self.stage_switch_seconds.append(time.perf_counter() - t0)
            self.ddp_model.train()
            t_log, n_log = time.perf_counter(), 0
            while self.step < end_step:
                if self._pause_due(progress):
                    del batches  # its workers' CPU time counts only once they have exited
                    self.clock.stage_finished()
                    self.save()
                    raise Paused(f"paused at step {self.step} of {self.total_steps}")
                nominal = self.nominal_step()
                self.methods.step_start(self, stage.fraction(nominal))
                with self.clock.step():
                    position = self.position
                    (x, y), fresh = self.replay.next(batches.__next__)
                    if fresh:
                        self.position += stage.batch_size
                    lr = self.schedule.lr_at(nominal, stage)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr * group.get("lr_scale", 1.0)
                    loss = self._train_step(x, y, criterion, stage, position)
                f_prev = stage.fraction(nominal)
                self.step += 1
                n_log += len(x)
                now = self.nominal_step()
                f = stage.fraction(now)
                if self.step % self.cfg.log_every_steps == 0 or now >= self.total_steps:
                    rate = n_log * self.dist.world / max(time.perf_counter() - t_log, 1e-9)
                    self.log.write({"kind": "train", "step": self.step, "epoch": round(self.curriculum.epoch_at(f), 6),
                                    "fraction": f, "stage": stage.index + 1, "resolution": stage.resolution,
                                    "magnitude": self.schedule.magnitude_at(f_prev), "lr": lr, "loss": loss,
                                    "images_per_s": rate, "wall_time_s": self.clock.wall_s,
                                    "cpu_time_s": self.clock.cpu_s}, progress=progress.at(now, stage, rate))
                    t_log, n_log = time.perf_counter(), 0
                e_prev, e_now = self.curriculum.epoch_at(f_prev), self.curriculum.epoch_at(f)
                for epoch in self.cfg.snapshot_epochs:  # weights kept for later evaluation (Table 1)
                    if e_prev < epoch <= e_now + 1e-9 and self.dist.is_main:
                        ckpt.save_snapshot(self.out, epoch, self.model.state_dict())
                stage_done = now >= stage.first_step + stage.steps
                if math.floor(e_now / eval_every) > math.floor(e_prev / eval_every) and not stage_done:
                    self.log.write(self._eval_record(stage))
                if stage_done or time.monotonic() - last_save > 60 * self.cfg.checkpoint_minutes:
                    if stage_done and now < self.total_steps:
                        self.log.write(self._eval_record(stage))
                    self.save()
                    last_save = time.monotonic()
                stop_if_preempted(self.save)
                if stage_done:
                    break
            del batches  # shuts the stage's loader workers down, so that their CPU time can be counted
            self.clock.stage_finished()
        self.methods.final_phase(self)
        final = self._eval_record(self.plan[-1])  # the weights were checked when the last step saved them
        bad = {k: v for k, v in final.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise NonFiniteResult(f"final {', '.join(f'{k}={v}' for k, v in bad.items())} at step {self.step}; "
                                  "no summary.json was written; lower the learning rate or set clip_grad")
        self.log.write({**final, "kind": "final"})
        summary = self._summary(final)
        if self.dist.is_main:
            write_json_atomic(self.out / "summary.json", summary)
        self.log.close()
        return summary

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        """Micro-batches of this process's ``n`` samples: gradient accumulation keeps the global batch when it does
        not fit (``micro_batch_size``; the early large batch of Sec. 5.3 grows the number of micro-batches)."""
        size = self.cfg.micro_batch_size or n
        return [(a, min(a + size, n)) for a in range(0, n, size)]

    def _batch_samples(self, position: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's sample indices of the fresh batch at stream ``position`` and their selection weights
        (None without sample selection)."""
        positions = (position + self.dist.rank, position + batch_size, self.dist.world)
        indices = torch.tensor(self._batch_keys[0].stream.indices(*positions), dtype=torch.int64)
        weights = self.selection.weights_at(*positions) if self.selection is not None else None
        return indices, weights

    def _gathered(self, local: torch.Tensor) -> torch.Tensor:
        """A per-sample tensor of every process, in the global batch's order (rank r holds positions r,
        r + world, ...)."""
        if self.dist.world == 1:
            return local
        rows = torch.zeros(self.dist.world, len(local), dtype=local.dtype, device=self.device)
        rows[self.dist.rank] = local.to(self.device)
        return self.dist.all_reduce_sum(rows).t().reshape(-1).cpu()

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, criterion: Any, stage: StagePlan,
                    position: int = 0) -> float:
        wants = self.methods.wants_losses or self.methods.selects
        indices, weights = self._batch_samples(position, stage.batch_size) if wants else (None, None)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.device.type == "cuda" and self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.mixup is not None:
            # timm's Mixup draws from NumPy's global RNG: seed it from the step so that the mixing does not depend on
            # what else used that RNG in this process (loader workers or not, resumed or not)
            np.random.seed(_sample_seed(self.cfg.seed, -1 - self.step))
            x, y = self.mixup(x, y)
        y = self.methods.targets(self, y)
        self.optimizer.zero_grad(set_to_none=True)
        masks = self._mask_generator(str(self.step)) if self.pretraining else None
        chunks = self._chunks(len(x))
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        seen: list[torch.Tensor] = []
        for i, (a, b) in enumerate(chunks):
            # DDP all-reduces gradients only on the last micro-batch
            last = i == len(chunks) - 1
            sync = contextlib.nullcontext() if last or self.dist.world == 1 else self.ddp_model.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                    enabled=self.autocast_dtype is not None):
                    if masks is not None:  # MAE: the model's own (mean) loss (Sec. 6.2), labels unused
                        losses = self.ddp_model(x[a:b], generator=masks).float().expand(b - a)
                    else:
                        losses = criterion(self.ddp_model(x[a:b]), y[a:b]).float()
                if indices is not None:
                    seen.append(losses.detach().cpu())
                    w = self.methods.loss_weights(self, indices[a:b], losses.detach())
                    w = weights[a:b] if w is None and weights is not None else (
                        w if weights is None else w * weights[a:b].to(w.device))
                    if w is not None:
                        losses = losses * w.to(losses.device)
                loss = losses.sum() / len(x)  # the (weighted) mean over the whole batch
                self.scaler.scale(loss).backward()
            total += loss.detach().float()
        value = self.dist.all_reduce_mean(total)
        if not torch.isfinite(value):  # before the optimizer step: nothing non-finite is ever applied or saved
            raise NonFiniteLoss(f"loss is {value.item()} at step {self.step + 1} (stage {stage.index + 1}, "
                                f"B={stage.resolution}); lower the learning rate or set clip_grad")
        if self.cfg.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        if indices is not None:
            self.methods.observe_losses(self, self._gathered(indices), self._gathered(torch.cat(seen)))
        return float(value)

    def _equivalent_epochs(self) -> float:
        """The plan's compute in epochs at the final size (whole steps per stage)."""
        consumed = sum(p.steps * p.batch_size * self.curriculum.relative_costs[p.resolution] for p in self.plan)
        return consumed / self.n_train

    def _summary(self, final: dict[str, Any]) -> dict[str, Any]:
        summary = {
            "model": self.cfg.model, "method": self.methods.label, "schedule": self.curriculum.name,
            "objective": "mae" if self.pretraining else "classification",
            **{k: final[k] for k in ("top1", "top5") if k in final}, "val_loss": final["val_loss"],
            "equivalent_epochs": self._equivalent_epochs(),
            "planned_equivalent_epochs": self.curriculum.equivalent_epochs,
            "real_epochs": sum(p.steps * p.batch_size for p in self.plan) / self.n_train,
            "steps": self.step, **self.clock.summary(),
            "gpu_hours": self.clock.wall_s * self.dist.world / 3600 if self.device.type == "cuda" else 0.0,
            "device": str(self.device), "world_size": self.dist.world,
            "stages": [asdict(p) for p in self.plan],
            "stage_switch_seconds": sum(self.stage_switch_seconds) / max(len(self.stage_switch_seconds), 1),
        }
        summary.update(self.methods.summary())
        if "top1_ema" in final:
            summary.update(top1_ema=final["top1_ema"], top5_ema=final["top5_ema"])
        if self.cost_fn is not None:
            summary["flops"] = sum(p.steps * p.batch_size * self.cost_fn(p.resolution) for p in self.plan)
        return summary


def _criterion(cfg: TrainConfig, soft_targets: bool) -> Any:
    """Per-sample losses (methods see them; the engine takes their weighted mean): timm's cross-entropy losses
    per sample -- ``SoftTargetCrossEntropy`` for Mixup/CutMix targets, ``LabelSmoothingCrossEntropy``,
    plain CE -- or binary cross-entropy averaged over classes (DeiT III's ``--bce-loss``, Sec. 3 of its paper:
    the mean of ``BCEWithLogitsLoss``; mixed targets count every class present as positive)."""
    smoothing = cfg.smoothing

    def per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if cfg.loss == "bce":
            t = target.gt(0.0).to(logits.dtype) if soft_targets else F.one_hot(target, logits.shape[-1]).to(
                logits.dtype)
            return F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean(-1)
        logp = F.log_softmax(logits, dim=-1)
        if soft_targets or target.ndim == 2:  # Mixup's or a method's targets (Methods.targets)
            return -(target * logp).sum(-1)
        nll = -logp.gather(1, target[:, None]).squeeze(1)
        return (1.0 - smoothing) * nll - smoothing * logp.mean(-1) if smoothing > 0 else nll

    return per_sample


def _check_tensors(what: str, saved: Any, mine: dict[str, torch.Tensor]) -> None:
    """The strict ``load_state_dict`` checks (same keys, same shapes), without loading anything."""
    if not isinstance(saved, dict):
        raise ckpt.UnusableCheckpoint(f"{what}: not a state dict")
    missing, unexpected = mine.keys() - saved.keys(), saved.keys() - mine.keys()
    if missing or unexpected:
        raise ckpt.UnusableCheckpoint(f"{what}: {len(missing)} missing and {len(unexpected)} unexpected tensors "
                                      f"(e.g. {sorted(missing or unexpected)[0]!r}): another model?")
    for name, tensor in mine.items():
        other = saved[name]
        if not isinstance(other, torch.Tensor) or other.shape != tensor.shape:
            shape = tuple(other.shape) if isinstance(other, torch.Tensor) else type(other).__name__
            raise ckpt.UnusableCheckpoint(f"{what}: {name!r} is {shape} in the checkpoint, {tuple(tensor.shape)} "
                                          "here: another model?")


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def train(cfg: TrainConfig, out_dir: str | Path, cost_fn: Any = None,
          resume: str | Path | None = None) -> dict[str, Any]:
    """Train (or resume) one run into ``out_dir``; returns its summary. ``resume``: a checkpoint file to resume
    from instead of the newest of ``out_dir``. The main process locks ``out_dir`` once the trainer has checked what
    it cannot train (:class:`~repro.launch.rundir.RunDirBusy` if another process holds it) and before it writes
    anything: nothing of a running run is touched."""
    trainer = Trainer(cfg, out_dir, cost_fn=cost_fn, resume=resume)  # refuses what it cannot train, writing nothing
    try:
        with RunLock(out_dir) if process_rank() == 0 else contextlib.nullcontext():
            write_json_atomic(Path(out_dir) / "train_config.json", trainer.cfg.model_dump())
            return trainer.train()
    finally:
        trainer.dist.cleanup()


if __name__ == "__main__":  # pragma: no cover - `python -m repro.train.engine CONFIG.json OUT` (torchrun)
    train(TrainConfig.model_validate(json.loads(Path(sys.argv[1]).read_text())), sys.argv[2])
    os._exit(0)
