"""AutoProg (Li et al., "Automated Progressive Learning for Efficient Training of Vision Transformers", CVPR'22)
on timm's VisionTransformer (DeiT): progressive growth in depth and input size, MoGrow, the elastic supernet and
the automated growth schedule.

Read from the paper (Sec. 3 progressive learning and MoGrow, Sec. 4 AutoProg, Algorithm 2) and its release
changlin31/AutoProg (``prog/progressive.py``, ``prog/helpers.py``, ``models/volo.py``, ``main_prog.py``, commit
e7ecc98; its README: "not the final version", VOLO only). What each piece follows:

* ``progressive_schedule`` (core) -- the manual schedule (``progressive_schedule`` of ``prog/progressive.py``):
  the epochs split into ``num_stages`` equal stages; size, depth and RandAug magnitude grow linearly from
  ``scale x final`` to the final value; drop path and random erasing from 0. Hyper-parameters of the release's
  ``scripts/train_autoprog.sh``: 4 stages, r_scale 0.5, l_scale 0.5 (h_scale 1: no width growth), aa_scale 0.5,
  dp_scale 0, re_scale 0. Sizes are multiples of 32 at 224 (the release's ``make_divisible(., 32)``); at another
  final size the multiple scales with it (8 at the smoke profile's 56: 32/40/48/56 = 128/160/192/224 x 1/4).
* ``layer_map`` / ``new_layers`` (core) -- MoGrow's layer mapping (``new_idx``, ``get_new_layer_idx``): layer i
  of the grown network copies an existing layer ("interpolation": each layer is followed by its copy, the
  copies going to the deepest layers when the depth does not double, e.g. 6 -> 8: 0 1 2 3 4 4 5 5).
* :func:`mogrow` -- Momentum Growth (Sec. 3.2; ``load_slice_clone_ema``): the *whole* grown network -- not only
  the new layers -- is initialised from the momentum (EMA) network through that mapping, and the momentum network
  is grown the same way (the release rebuilds its EMAs from the grown model and reloads them). The release keeps
  four EMAs (decays 0.998-0.9996) and grows from the slowest; here the engine's one EMA is the momentum network.
  The release starts a fresh optimizer at every growth; :func:`mogrow` leaves that to the caller.
* ``subnet_blocks`` (core) -- the elastic supernet (Sec. 4.2; ``set_sample_config`` of ``models/volo.py``): the
  supernet is the network grown to the largest candidate depth; a sub-network of depth l skips the first
  ``l_max - l`` of the newly grown layers (identity), so every candidate shares the supernet's weights.
  :class:`SupernetSampler` trains it one-shot: each training step draws a candidate (size, depth) uniformly
  (``sample_configs(mode='random')``) and the batch is resized bilinearly to its size (``train_one_epoch_super``).
  The draw is keyed by (seed, step) instead of Python's global ``random`` seeded per epoch, so that a resumed
  run draws the same candidates.
* ``search_space`` (core) -- the candidates of a stage (``main_prog.py``): at the first growth the first, middle and
  last of the schedule's sizes and depths; later the current size and the next one, and up to three depths
  above the current one. The last stage is the full network (no search).
* ``fit_exponent`` / ``choose`` (core) -- the automated growth schedule (Sec. 4.1, eq. (4) relaxed to
  sub-network selection; ``auto_grow``): each candidate's loss is estimated one-shot on training data by the
  momentum supernet (:func:`candidate_losses`, ``validate_trainset``), averaged over the estimates of the search
  epochs ("taylor0"); ``L = a T^b`` is fitted over the candidates against their training time T and the
  candidate minimising ``L T^w`` with ``w = max(-b, 0)`` is chosen: the one that lies furthest below the
  loss-vs-time trend. Two choices differ from the release, said here: T is the relative cost ``depth x size^2``
  (the release's own activation measure ``act = l r^2``; it times 50 steps, which makes the choice depend on the
  machine's load and breaks exact resume) and the power law is fitted by least squares in log-log space (scipy's
  ``curve_fit`` in linear space in the release; scipy is not a dependency).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from repro.core.autoprog import layer_map, subnet_blocks
from repro.errors import UserError
from repro.models.elastic_vit import ElasticBlocks, set_active


def _grown_state(source: nn.Module, src_blocks: Sequence[int]) -> dict[str, torch.Tensor]:
    """``source``'s state with block j taken from block ``src_blocks[j]`` (j < len(src_blocks))."""
    state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    for j, i in enumerate(src_blocks):
        if i == j:
            continue
        for k, v in source.blocks[i].state_dict().items():
            state[f"blocks.{j}.{k}"] = v.detach().clone()
    return state


def mogrow(model: nn.Module, momentum: nn.Module, prev_depth: int, new_depth: int) -> None:
    """MoGrow: grow an elastic ViT whose first ``prev_depth`` blocks are active to ``new_depth`` blocks, every
    weight of the grown network (and of the momentum network) initialised from the momentum network."""
    _check_depth(model, new_depth)
    state = _grown_state(momentum, layer_map(prev_depth, new_depth))
    for m in (model, momentum):
        m.load_state_dict(state)
        set_active(m, blocks=list(range(new_depth)))


def keep_subnet(model: nn.Module, momentum: nn.Module, blocks: Sequence[int]) -> None:
    """After the search: the chosen sub-network inherits its blocks from the trained supernet (``load_super``:
    the release reloads the sub-network from the supernet *model*; the momentum network the same way from the
    momentum supernet) and they become the network's first ``len(blocks)`` blocks."""
    model_state, momentum_state = _grown_state(model, blocks), _grown_state(momentum, blocks)
    for m, state in ((model, model_state), (momentum, momentum_state)):
        m.load_state_dict(state)
        set_active(m, blocks=list(range(len(blocks))))


def _check_depth(model: nn.Module, depth: int) -> None:
    if not isinstance(getattr(model, "blocks", None), ElasticBlocks):
        raise UserError("AutoProg grows an elastic ViT (repro.models.elastic_vit.make_elastic)")
    if depth > len(model.blocks):
        raise UserError(f"cannot grow to {depth} blocks: the network has {len(model.blocks)}")


class SupernetSampler:
    """One-shot supernet training: a forward pre-hook that runs each training forward pass on a uniformly drawn
    candidate (size, depth) -- the batch resized bilinearly, the sub-network's blocks active.

    The draw is a function of (seed, step); ``step`` counts training forward passes and is the sampler's whole
    state (:meth:`state_dict`), so a resumed run continues the same sequence of candidates.
    """

    def __init__(self, model: nn.Module, sizes: Sequence[int], depths: Sequence[int], seed: int) -> None:
        self.model, self.sizes, self.depths, self.seed = model, list(sizes), list(depths), seed
        self.step = 0
        self.last: tuple[int, int] | None = None
        self._handle = model.register_forward_pre_hook(self._pre_forward)

    def draw(self, step: int) -> tuple[int, int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        pick = torch.randint(len(self.sizes) * len(self.depths), (1,), generator=g).item()
        return self.sizes[pick // len(self.depths)], self.depths[pick % len(self.depths)]

    def _pre_forward(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        if not module.training:
            return None
        size, depth = self.last = self.draw(self.step)
        self.step += 1
        set_active(module, blocks=subnet_blocks(self.depths[0], self.depths[-1], depth))
        x = args[0]
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return (x, *args[1:])

    def remove(self) -> None:
        self._handle.remove()

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


@torch.no_grad()
def candidate_losses(supernet: nn.Module, sizes: Sequence[int], depths: Sequence[int],
                     batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[tuple[int, int], float]:
    """One-shot estimate: the mean cross-entropy of every candidate sub-network of ``supernet`` (the momentum
    supernet in the release) on the same training ``batches``, each resized to the candidate's size."""
    was_training, before = supernet.training, copy.copy(supernet.blocks.active)
    supernet.eval()
    out: dict[tuple[int, int], float] = {}
    try:
        for depth in depths:
            set_active(supernet, blocks=subnet_blocks(depths[0], depths[-1], depth))
            for size in sizes:
                total, n = 0.0, 0
                for x, y in batches:
                    if x.shape[-1] != size:
                        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                    total += F.cross_entropy(supernet(x).float(), y, reduction="sum").item()
                    n += len(y)
                out[(size, depth)] = total / max(n, 1)
    finally:
        set_active(supernet, blocks=before)
        supernet.train(was_training)
    return out


