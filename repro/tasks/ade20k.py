"""Task ``ade20k``: UperNet (80k / 160k iterations) on ADE20K from an IN-1K run's encoder (Sec. 6.3, Table 18),
MMSegmentation's shipped configs (:mod:`repro.detseg.configs`) run by mmengine's Runner in the run directory
(:mod:`repro.detseg.runner`).

A run names its segmentor with the override ``segmentor`` and its pre-training with ``init_from``; its summary
holds the single-scale ``miou`` and the multi-scale + flip ``miou_ms_flip`` (the shipped ``tta_pipeline``:
ratios 0.5-1.75 and horizontal flip, mmseg's ``SegTTAModel``), in percent. The data set is ``ade20k``
(``ADEChallengeData2016/`` under ``$REPRO_DATA_ADE20K`` or ``$REPRO_DATA/ade20k``) or the smoke profile's
``ade20k-proxy`` (:mod:`repro.detseg.proxy`). The schedule is the segmentor's iterations times the resolved
``epochs`` (1 = one schedule, so the profile's scaling applies). On the proxy the decode and auxiliary heads
are 8x narrower (512 -> 64 channels), as the proxy encoders are tiny, and its stand-in
(experiments/stand_ins.yaml) sets the batch and a multiple of the shipped learning rate (``lr_scale``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.tasks import Task, register

DATASETS = ("ade20k", "ade20k-proxy")
FAMILIES = ("swin", "deit")
PROXY_NARROWING = 8  # the proxy UperNet's widths: 512 -> 64 (repro.detseg.configs.narrow_heads)


def ade_root() -> Path:
    from repro.data.readers import find_root

    def probe(c: Path) -> bool:
        base = c / "ADEChallengeData2016"
        return all((base / kind / split).is_dir() for kind in ("images", "annotations")
                   for split in ("training", "validation"))

    return find_root("ade20k", None, probe, "ADEChallengeData2016/{images,annotations}/{training,validation}/")


def check(config: dict[str, Any]) -> str:
    from repro.detseg.configs import SEGMENTORS
    from repro.models import family_of

    if config.get("segmentor") not in SEGMENTORS:
        return f"an ade20k run names its segmentor (override segmentor: {' or '.join(SEGMENTORS)})"
    if config.get("dataset") not in DATASETS:
        return f"an ade20k run trains on {' or '.join(DATASETS)}, not {config.get('dataset')!r}"
    try:
        import mmseg  # noqa: F401
    except ImportError:
        return "mmsegmentation is not installed: pip install 'repro[detseg]' (make setup installs it)"
    family = family_of(str(config["model"]))
    if family not in FAMILIES:
        return f"the paper's UperNet runs have Swin or DeiT encoders; no config for a {family} backbone"
    return ""


def build(config: dict[str, Any], run_dir: Path) -> Any:
    """The mmseg config of a resolved ``ade20k`` run."""
    from repro import detseg  # noqa: F401  (the shims, before any mm import)
    from repro.detseg import configs, proxy, runner
    from repro.detseg.backbone import TimmBackbone
    from repro.models import family_of

    name = str(config["segmentor"])
    upstream, up = runner.upstream_config(config, run_dir)
    family = family_of(str(config["model"]))
    rec = configs.recipe(name, family)
    cfg = configs.shipped("mmseg", rec.configs[family])
    args = runner.backbone_args(upstream, up)
    probe = TimmBackbone(**{**args, "upstream": None})
    configs.set_backbone(cfg, args, probe.channels, probe.strides, name)

    if config["dataset"] == "ade20k-proxy":
        root = proxy.ade20k(int(config.get("max_train_images") or 400), int(config.get("proxy_val_images", 200)),
                            seed=int(config.get("seed", 0)))
        factor = proxy.CANVAS / configs.SHIPPED_SCALE["mmseg"]
        for key in ("train_pipeline", "test_pipeline"):
            cfg[key] = configs.scale_pipeline(cfg[key], factor)
        cfg.train_dataloader.dataset.pipeline = cfg.train_pipeline
        for loader in ("val_dataloader", "test_dataloader"):
            cfg[loader].dataset.pipeline = cfg.test_pipeline
        crop = tuple(configs._scaled(tuple(cfg.crop_size), factor))
        cfg.model.data_preprocessor.size = crop
        classes = proxy.FMNIST_CLASSES
        palette = [[(37 * i) % 256, (91 * i) % 256, (151 * i) % 256] for i in range(len(classes))]
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            # ADE20KDataset accepts only subsets of ADE's 150 classes: its base class with ADE's file conventions
            cfg[loader].dataset.update(type="BaseSegDataset", img_suffix=".jpg", seg_map_suffix=".png",
                                       reduce_zero_label=True, metainfo=dict(classes=classes, palette=palette))
        cfg.model.decode_head.num_classes = cfg.model.auxiliary_head.num_classes = len(classes)
        configs.narrow_heads(cfg.model, PROXY_NARROWING)
    else:
        root = ade_root()
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = str(root / "ADEChallengeData2016")

    iters = max(1, round(float(config["epochs"]) * rec.iters))  # type: ignore[operator]
    cfg.train_cfg.max_iters = iters
    runner.scale_iterations(cfg, iters, int(rec.iters))  # type: ignore[arg-type]
    configs.scale_lr(cfg, config.get("lr_scale"), name)
    runner.common(cfg, run_dir, int(config.get("seed", 0)), int(config.get("workers", 2)),
                  int(config.get("images_per_batch", 16)))
    return cfg


def _tta(cfg: Any) -> None:
    """tools/test.py --tta of mmseg: the test set through ``tta_pipeline``, the model wrapped in ``tta_model``."""
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def run(config: dict[str, Any], run_dir: Path) -> None:
    from repro.detseg import runner

    started = time.time()
    cfg = build(config, Path(run_dir))
    single = runner.train_and_test(cfg)
    if "mIoU" not in single:
        raise UserError(f"the ADE20K evaluation returned no mIoU (got {sorted(single)})")
    multi = runner.test_with(cfg, runner.last_checkpoint(cfg), _tta)
    runner.finish(Path(run_dir), {"miou": float(single["mIoU"]), "miou_ms_flip": float(multi["mIoU"])}, started)


def data(config: dict[str, Any]) -> Path | None:
    """The proxy is drawn from Fashion-MNIST (:mod:`repro.detseg.proxy`)."""
    from repro.data.datasets import locate

    return locate("fashion-mnist") if config["dataset"] == "ade20k-proxy" else ade_root()


# MMSegmentation's UperNet configs train on 8 GPUs x 2 images (their names' 8xb2: upernet_8xb2-160k_...)
GPUS = 8
TASK = register(Task("ade20k", run=run, check=check, upstream=frozenset({"in1k"}), requires_upstream=True,
                     data=data, gpus=GPUS))
