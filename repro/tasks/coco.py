"""Task ``coco``: RetinaNet and Cascade Mask R-CNN (1x) on COCO 2017 from an IN-1K run's backbone (Sec. 6.3,
Table 17), MMDetection's shipped configs (:mod:`repro.detseg.configs`) run by mmengine's Runner in the run
directory (:mod:`repro.detseg.runner`).

A run names its detector with the override ``detector`` and its pre-training with ``init_from``; its summary
holds COCO's AP^box, AP^box_50, AP^box_75 and, for Cascade Mask R-CNN, AP^mask, AP^mask_50, AP^mask_75
(pycocotools through mmdet's ``CocoMetric``, in percent). The data set is ``coco`` (the 2017 layout under
``$REPRO_DATA_COCO`` or ``$REPRO_DATA/coco``) or the smoke profile's ``coco-proxy`` (:mod:`repro.detseg.proxy`).
On the proxy, whose canvases hold at most three objects, Cascade Mask R-CNN samples 16 instead of 512 RoIs per
image and keeps 300 instead of 2000 proposals, RetinaNet clips its gradient norm at 1, and every detector's neck
and heads are 8x narrower (FPN 32 channels instead of 256), as the proxy backbones are tiny; its stand-in
(experiments/stand_ins.yaml) sets the batch and a multiple of the shipped learning rate (``lr_scale``); everything
else is the shipped config.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.tasks import Task, register

COCO_TRAIN_IMAGES = 118287  # train2017: the 1x schedule's iterations per epoch at batch 16
PAPER_EPOCHS = 12
DATASETS = ("coco", "coco-proxy")
PROXY_NARROWING = 8  # the proxy detectors' neck and head widths: 256 -> 32 (repro.detseg.configs.narrow_heads)
# RoIs sampled per canvas and Cascade stage on the proxy (shipped: 512); a canvas holds 1-3 objects, and 16 of
# them keep the shipped quarter of positives (4). RoI Align's CPU backward took a third of a Swin-T step's forward
# and backward at 64 RoIs x 16 canvases; 64 -> 32 cut that forward and backward from 1.47 s to 1.21 s, and batch 8
# with 16 RoIs makes a whole step 0.5 s (2.2 s at batch 16 with 64)
PROXY_ROIS = 16
# RetinaNet's gradient-norm clip on the proxy (shipped: none). At 8x its learning rate (lr_scale) the Swin-T run
# from the EfficientTrain pre-training went NaN at iteration 150; clipped at 1 it stays finite (AP^box 4.7). The
# (logged, pre-clip) norms are ~0.3 for the first 100 iterations and 1-3 once the loss falls, so the clip shapes
# the second half of a proxy run
PROXY_RETINANET_CLIP = 1.0
METRICS = {"bbox_mAP": "ap_box", "bbox_mAP_50": "ap_box_50", "bbox_mAP_75": "ap_box_75", "segm_mAP": "ap_mask",
           "segm_mAP_50": "ap_mask_50", "segm_mAP_75": "ap_mask_75"}


def coco_root() -> Path:
    from repro.data.readers import find_root

    def probe(c: Path) -> bool:
        return all((c / p).exists() for p in ("annotations/instances_train2017.json",
                                              "annotations/instances_val2017.json", "train2017", "val2017"))

    return find_root("coco", None, probe, "annotations/instances_{train,val}2017.json, train2017/ and val2017/")


def check(config: dict[str, Any]) -> str:
    from repro.detseg.configs import DETECTORS
    from repro.models import family_of

    if config.get("detector") not in DETECTORS:
        return f"a coco run names its detector (override detector: {' or '.join(DETECTORS)})"
    if config.get("dataset") not in DATASETS:
        return f"a coco run trains on {' or '.join(DATASETS)}, not {config.get('dataset')!r}"
    try:
        import mmdet  # noqa: F401
    except ImportError:
        return "mmdet is not installed: pip install 'repro[detseg]' (make setup installs it)"
    family = family_of(str(config["model"]))
    if family != "swin":
        return f"the paper's detectors have Swin backbones; no config for a {family} backbone"
    return ""


def build(config: dict[str, Any], run_dir: Path) -> Any:
    """The mmdet config of a resolved ``coco`` run."""
    from repro import detseg  # noqa: F401  (the shims, before any mm import)
    from repro.detseg import configs, proxy, runner
    from repro.models import family_of

    name = str(config["detector"])
    upstream, up = runner.upstream_config(config, run_dir)
    rec = configs.recipe(name, family_of(str(config["model"])))
    cfg = configs.shipped("mmdet", rec.configs["swin"])
    cfg.pop("custom_imports", None)  # ConvNeXt's mmpretrain backbone: replaced below
    if name == "cascade-mask-rcnn-1x":  # ConvNeXt's model on the 1x schedule and data pipeline
        one_x, data = configs.shipped("mmdet", configs.COCO_1X), configs.shipped("mmdet", configs.COCO_1X_DATA)
        cfg.train_cfg, cfg.param_scheduler = one_x.train_cfg, one_x.param_scheduler
        cfg.train_dataloader.dataset.pipeline = data.train_pipeline
        cfg.optim_wrapper = dict(
            type="AmpOptimWrapper" if _cuda() else "OptimWrapper", optimizer=cfg.optim_wrapper.optimizer,
            paramwise_cfg=dict(custom_keys={"norm": dict(decay_mult=0.0),
                                            "relative_position_bias_table": dict(decay_mult=0.0)}))
    from repro.detseg.backbone import TimmBackbone

    args = runner.backbone_args(upstream, up)
    probe = TimmBackbone(**{**args, "upstream": None})
    configs.set_backbone(cfg, args, probe.channels, probe.strides, name)

    if config["dataset"] == "coco-proxy":
        root = proxy.coco(int(config.get("max_train_images") or 400), int(config.get("proxy_val_images", 200)),
                          seed=int(config.get("seed", 0)))
        classes = proxy.FMNIST_CLASSES
        factor = proxy.CANVAS / configs.SHIPPED_SCALE["mmdet"]
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            ds = cfg[loader].dataset
            ds.pipeline = configs.scale_pipeline(ds.pipeline, factor)
            ds.metainfo = dict(classes=classes)
        _set_classes(cfg.model, len(classes))
        configs.narrow_heads(cfg.model, PROXY_NARROWING)
        if name == "retinanet-1x":
            cfg.optim_wrapper.clip_grad = dict(max_norm=PROXY_RETINANET_CLIP, norm_type=2)
        if name == "cascade-mask-rcnn-1x":
            for stage in cfg.model.train_cfg.rcnn:
                stage.sampler.num = PROXY_ROIS
            for key in ("rpn_proposal",):
                cfg.model.train_cfg[key].nms_pre = cfg.model.train_cfg[key].max_per_img = 300
            cfg.model.test_cfg.rpn.nms_pre = cfg.model.test_cfg.rpn.max_per_img = 300
    else:
        root = coco_root()
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = str(root)
    for evaluator in ("val_evaluator", "test_evaluator"):
        cfg[evaluator].ann_file = str(root / "annotations" / "instances_val2017.json")

    batch = int(config.get("images_per_batch", 16))
    epochs = max(1, round(float(config["epochs"])))
    train_images = int(config.get("max_train_images") or COCO_TRAIN_IMAGES)
    cfg.train_cfg.max_epochs = epochs
    for sched in cfg.param_scheduler:
        if sched.get("by_epoch", True):
            sched["end"] = epochs
            sched["milestones"] = [max(1, round(m * epochs / PAPER_EPOCHS)) for m in sched["milestones"]]
    total = epochs * math.ceil(train_images / batch)
    runner.scale_iterations(cfg, total, PAPER_EPOCHS * math.ceil(COCO_TRAIN_IMAGES / 16))
    configs.scale_lr(cfg, config.get("lr_scale"), name)
    runner.common(cfg, run_dir, int(config.get("seed", 0)), int(config.get("workers", 2)), batch)
    return cfg


def _set_classes(model: Any, n: int) -> None:
    if "bbox_head" in model:  # RetinaNet
        model.bbox_head.num_classes = n
        return
    for head in model.roi_head.bbox_head:
        head.num_classes = n
    model.roi_head.mask_head.num_classes = n


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def summarise(metrics: dict[str, float], masks: bool) -> dict[str, float]:
    """mmdet's ``coco/bbox_mAP`` ... (fractions) -> our ``ap_box`` ... in percent. A detector that predicts
    nothing above the shipped score threshold gets no metrics from mmdet's ``CocoMetric`` (it logs "The testing
    results of the whole dataset is empty"): its AP is 0."""
    if not metrics:
        return {ours: 0.0 for ours in METRICS.values() if ours.startswith("ap_box") or masks}
    out = {ours: 100.0 * float(metrics[f"coco/{theirs}"]) for theirs, ours in METRICS.items()
           if f"coco/{theirs}" in metrics}
    if "ap_box" not in out:
        raise UserError(f"the COCO evaluation returned no bbox AP (got {sorted(metrics)})")
    return out


def run(config: dict[str, Any], run_dir: Path) -> None:
    from repro.detseg import runner

    started = time.time()
    cfg = build(config, Path(run_dir))
    masks = config["detector"] == "cascade-mask-rcnn-1x"
    runner.finish(Path(run_dir), summarise(runner.train_and_test(cfg), masks), started)


def data(config: dict[str, Any]) -> Path | None:
    """The proxy is drawn from Fashion-MNIST (:mod:`repro.detseg.proxy`)."""
    from repro.data.datasets import locate

    return locate("fashion-mnist") if config["dataset"] == "coco-proxy" else coco_root()


# MMDetection's 1x configs train on 8 GPUs x 2 images (its 8xb2: schedule_1x.py's auto_scale_lr base_batch_size
# 16 = 8 GPUs x 2 samples per GPU); images_per_batch is that global batch, whatever the GPU count
GPUS = 8
TASK = register(Task("coco", run=run, check=check, upstream=frozenset({"in1k"}), requires_upstream=True,
                     data=data, gpus=GPUS))
