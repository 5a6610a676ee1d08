"""Masked-autoencoder pre-training (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022) on
a timm VisionTransformer, with pixel or HOG targets: the self-supervised runs of ET++ Table 15 (Sec. 6.2).

The algorithm is MAE's (facebookresearch/mae ``models_mae.py``, read for this module; written anew because its
``Block(qk_scale=...)`` call no longer exists in timm 1.0 and its fixed sin-cos embedding is built for one grid):

* the encoder embeds every patch, adds its position embedding, keeps a random ``1 - mask_ratio`` of the tokens
  per sample (``argsort`` of uniform noise; MAE Sec. 3 "random sampling", ratio 0.75), prepends the class token
  and runs the ViT's blocks and final norm on the visible tokens only;
* the decoder (``decoder_dim`` wide, ``decoder_depth`` blocks; ViT-B: 512 x 8, 16 heads) embeds them, fills the
  masked places with one learned mask token, adds its own position embedding and predicts each patch's target;
* the loss is the mean squared error on the masked patches only; ``pixel``: the patch's pixels, normalised per
  patch with ``norm_pix_loss`` (MAE's default for its best results); ``hog``: MaskFeat's per-patch HOG
  (:mod:`repro.core.hog`), the target of Table 15's "+ HOG" rows.

Position embeddings are MAE's fixed 2-D sin-cos (no parameters), rebuilt for every patch grid so that ET++'s
down-sampled inputs (Sec. 5) keep their meaning: at a g x g grid the embedding is evaluated at the centres of
the g patches measured in patches of the final G x G grid, ``(i + 1/2) G / g - 1/2`` -- the same image
locations, as interpolating a learned embedding does for supervised ViTs (timm ``dynamic_img_size``); at the
final grid these are MAE's integer positions exactly. The encoder *is* a timm ``VisionTransformer`` (its
``pos_embed`` holds the final grid's sin-cos, frozen as in MAE), so :func:`encoder_weights` of its state dict
loads into ``timm.create_model(<the same ViT>)`` for fine-tuning (only the new head is missing).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
import torch.nn as nn

from repro.core.hog import hog_target_dim, hog_targets
from repro.errors import UserError

Target = Literal["pixel", "hog"]
ENCODER = "encoder."  # the prefix of the encoder's tensors in a MaskedAutoencoder's state dict
# the ViT of the CPU proxy: the model zoo's (the DeiT family's proxy; every ViT's proxy is this one network)
PROXY_ENCODER = "DeiT-Small"
# MAE's ViT-B decoder (mae_vit_base_patch16_dec512d8b); the CPU proxy's is as light relative to its encoder
DECODER = {"full": {"dim": 512, "depth": 8, "heads": 16}, "proxy": {"dim": 32, "depth": 1, "heads": 2}}


def sincos_position_embedding(dim: int, grid: int, final_grid: int) -> torch.Tensor:
    """MAE's 2-D sin-cos embedding (``util/pos_embed.py``) of a ``grid`` x ``grid`` patch grid covering the image
    of the ``final_grid`` x ``final_grid`` one: (grid^2, dim), row-major; the first half of the channels encodes
    the column, the second the row, each as [sin | cos] of the position times 1 / 10000^(k / (dim / 4))."""
    if dim % 4:
        raise UserError(f"a 2-D sin-cos position embedding needs a width divisible by 4, got {dim}")
    pos = (torch.arange(grid, dtype=torch.float64) + 0.5) * (final_grid / grid) - 0.5
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    angles = pos[:, None] * omega[None]  # (grid, dim/4)
    one_d = torch.cat([angles.sin(), angles.cos()], dim=1)  # (grid, dim/2)
    rows, cols = one_d[:, None].expand(grid, grid, -1), one_d[None].expand(grid, grid, -1)
    return torch.cat([cols, rows], dim=-1).reshape(grid * grid, dim).float()


def random_masking(n: int, length: int, ratio: float, generator: torch.Generator | None,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking: the indices of the kept tokens (n, keep) in shuffled order and the mask
    (n, length), 1 where a token is removed, keep = ``int(length (1 - ratio))``."""
    keep = int(length * (1 - ratio))
    if keep < 1:
        raise UserError(f"a mask ratio of {ratio} leaves none of the {length} patches visible; use a lower ratio "
                        "or a larger input")
    noise = torch.rand(n, length, generator=generator, device=device)
    ids_keep = noise.argsort(dim=1)[:, :keep]
    mask = torch.ones(n, length, device=device)
    mask.scatter_(1, ids_keep, 0.0)
    return ids_keep, mask


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, patch^2 C), MAE's layout (each patch row-major, channels last)."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // patch, patch, w // patch, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, (h // patch) * (w // patch), patch * patch * c)


class MaskedAutoencoder(nn.Module):
    """MAE around a timm ``VisionTransformer`` encoder (class token, no head). ``forward(images, generator)``
    returns the loss; the masks are drawn from ``generator`` (the engine seeds one per step, for exact resume;
    in eval mode without one, from a fixed seed)."""

    def __init__(self, encoder: nn.Module, *, final_size: int, decoder_dim: int, decoder_depth: int,
                 decoder_heads: int, mask_ratio: float = 0.75, target: Target = "pixel",
                 norm_pix_loss: bool = True) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block, VisionTransformer

        if not isinstance(encoder, VisionTransformer) or encoder.cls_token is None or encoder.num_prefix_tokens != 1:
            raise UserError("MAE pre-training needs a timm VisionTransformer with a class token and no other prefix "
                            f"tokens, got {type(encoder).__name__}")
        if not 0 < mask_ratio < 1:
            raise UserError(f"mask ratio {mask_ratio} is outside (0, 1); MAE uses 0.75")
        self.encoder = encoder
        self.patch = int(encoder.patch_embed.patch_size[0])
        self.final_grid = final_size // self.patch
        self.mask_ratio, self.target, self.norm_pix_loss = mask_ratio, target, norm_pix_loss
        encoder.patch_embed.strict_img_size = False  # every B of the curriculum; the grid is rebuilt per input
        channels = int(encoder.patch_embed.proj.in_channels)
        dim = int(encoder.embed_dim)
        out = self.patch * self.patch * channels if target == "pixel" else hog_target_dim(self.patch, channels)
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_blocks = nn.Sequential(*[
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=norm)
            for _ in range(decoder_depth)])
        self.decoder_norm = norm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, out)
        self._initialize(dim)

    def _initialize(self, dim: int) -> None:
        """MAE's ``initialize_weights``: frozen sin-cos ``pos_embed`` (class token's row 0), the patch projection
        like a Linear (Xavier on its flattened kernel), class and mask tokens N(0, 0.02), every Linear Xavier
        uniform with zero bias, every LayerNorm 1 / 0."""
        enc = self.encoder
        with torch.no_grad():
            enc.pos_embed.zero_()
            enc.pos_embed[0, 1:] = sincos_position_embedding(dim, self.final_grid, self.final_grid)
        enc.pos_embed.requires_grad_(False)
        w = enc.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))
        nn.init.normal_(enc.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _grid(self, images: torch.Tensor) -> int:
        h, w = images.shape[-2:]
        if h != w or h % self.patch:
            raise UserError(f"MAE takes square inputs of whole {self.patch}-pixel patches, got {h}x{w}")
        return h // self.patch

    def _positions(self, dim: int, grid: int, like: torch.Tensor) -> torch.Tensor:
        return sincos_position_embedding(dim, grid, self.final_grid).to(like.device, like.dtype)[None]

    def forward_encoder(self, images: torch.Tensor, generator: torch.Generator | None = None,
                        ratio: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Visible tokens through the encoder: (latent (N, 1 + keep, D), kept indices, mask (N, L))."""
        enc = self.encoder
        grid = self._grid(images)
        x = enc.patch_embed(images)
        x = x.flatten(1, 2) if x.ndim == 4 else x  # NHWC with timm's dynamic_img_size
        x = x + self._positions(x.shape[-1], grid, x)
        ids_keep, mask = random_masking(x.shape[0], x.shape[1], self.mask_ratio if ratio is None else ratio,
                                        generator, x.device)
        x = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, x.shape[-1]))
        cls = enc.cls_token + enc.pos_embed[:, :1]
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = enc.norm(enc.blocks(enc.norm_pre(x)))
        return x, ids_keep, mask

    def forward_decoder(self, latent: torch.Tensor, ids_keep: torch.Tensor, grid: int) -> torch.Tensor:
        """Predictions (N, L, target) for every patch (the loss reads the masked ones)."""
        x = self.decoder_embed(latent)
        n, length, dim = x.shape[0], grid * grid, x.shape[-1]
        tokens = self.mask_token.to(x.dtype).expand(n, length, dim).clone()
        tokens.scatter_(1, ids_keep[..., None].expand(-1, -1, dim), x[:, 1:])  # visible tokens back in place
        x = torch.cat([x[:, :1], tokens + self._positions(dim, grid, x)], dim=1)  # class token: position 0
        x = self.decoder_norm(self.decoder_blocks(x))
        return self.decoder_pred(x)[:, 1:]

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(images.device.type, enabled=False):  # float32 also under AMP (HOG's Sobel, atan2)
            return self._targets(images.float())

    def _targets(self, images: torch.Tensor) -> torch.Tensor:
        if self.target == "hog":
            return hog_targets(images, self.patch)
        target = patchify(images, self.patch)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        return target

    def loss(self, images: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE's ``forward_loss``: per-patch mean squared error, averaged over the masked patches."""
        per_patch = ((pred.float() - self.targets(images)) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is None and not self.training:  # evaluation: fixed masks, the global RNG untouched
            generator = torch.Generator(images.device).manual_seed(0)
        latent, ids_keep, mask = self.forward_encoder(images, generator)
        return self.loss(images, self.forward_decoder(latent, ids_keep, self._grid(images)), mask)



def encoder_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a :class:`MaskedAutoencoder` state dict (a checkpoint's ``model``) under timm's
    ViT names: what fine-tuning loads into ``timm.create_model`` (the decoder and mask token stay behind)."""
    return {k.removeprefix(ENCODER): v for k, v in state.items() if k.startswith(ENCODER)}


def build_encoder(model: str, variant: str, img_size: int, num_classes: int = 0, **kwargs: object) -> nn.Module:
    """The ViT that MAE pre-trains, as the engine builds it for fine-tuning (``repro.train.model``): a timm ViT
    name (full) or a model-zoo ViT (proxy, e.g. :data:`PROXY_ENCODER`), without a head."""
    import timm

    from repro.models import zoo

    if variant == "proxy":
        return zoo.create(model, variant="proxy", num_classes=num_classes, img_size=img_size, **kwargs)
    if not timm.is_model(model) or "vit" not in model:
        raise UserError(f"MAE pre-trains a timm ViT, got {model!r}; e.g. vit_base_patch16_224 (Table 15's ViT-B)")
    return timm.create_model(model, pretrained=False, num_classes=num_classes, img_size=img_size,
                             dynamic_img_size=True, **kwargs)


def create(model: str, variant: str, img_size: int, *, target: Target = "pixel", mask_ratio: float = 0.75,
           norm_pix_loss: bool = True, decoder: dict[str, int] | None = None,
           **encoder_kwargs: object) -> MaskedAutoencoder:
    """MAE for ``model`` (see :func:`build_encoder`, which takes ``encoder_kwargs``) at final size ``img_size``;
    ``decoder`` overrides the variant's ``dim`` / ``depth`` / ``heads`` (:data:`DECODER`)."""
    dec = {**DECODER["proxy" if variant == "proxy" else "full"], **(decoder or {})}
    return MaskedAutoencoder(build_encoder(model, variant, img_size, **encoder_kwargs), final_size=img_size,
                             decoder_dim=dec["dim"], decoder_depth=dec["depth"], decoder_heads=dec["heads"],
                             mask_ratio=mask_ratio, target=target, norm_pix_loss=norm_pix_loss)
