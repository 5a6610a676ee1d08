"""Tasks coco / ade20k (repro.tasks.coco, repro.tasks.ade20k) on tiny proxies: one training step of each
detector / segmentor on a proxy backbone taken from an upstream run, and (slow) whole Runner runs with resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from repro import detseg  # noqa: F401  (the shims first)
from repro.launch.rundir import run_info, write_json_atomic
from repro.train import checkpoint as ckpt


def upstream(root: Path, model: str) -> str:
    """A finished IN-1K-like run of the ``model`` proxy at 56^2 (random weights) beside the runs under test."""
    from repro.models import create

    run = root / f"up-{model.lower()}"
    run.mkdir(parents=True)
    write_json_atomic(run / "config.json", {"model": model, "model_variant": "proxy", "final_size": 56})
    ckpt.save(run, 1, {"model": create(model, variant="proxy", num_classes=10, img_size=56).state_dict()})
    write_json_atomic(run / "summary.json", {"top1": 50.0})
    return run.name


def config(task: str, name: str, model: str, up: str, **extra: Any) -> dict[str, Any]:
    key, dataset = ("detector", "coco-proxy") if task == "coco" else ("segmentor", "ade20k-proxy")
    return {"task": task, key: name, "model": model, "dataset": dataset, "init_from": up, "epochs": 1,
            "max_train_images": 4, "proxy_val_images": 2, "images_per_batch": 2, "workers": 0, "seed": 0, **extra}


@pytest.fixture
def runs(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "data"))
    torch.set_num_threads(1)
    return tmp_path / "runs"


CASES = [("coco", "retinanet-1x", "Swin-Tiny"), ("coco", "cascade-mask-rcnn-1x", "Swin-Tiny"),
         ("ade20k", "upernet-80k", "Swin-Tiny"), ("ade20k", "upernet-160k", "DeiT-Small")]


@pytest.mark.parametrize(("task", "name", "model"), CASES)
def test_one_training_step_moves_the_upstream_backbone(runs, task: str, name: str, model: str) -> None:  # type: ignore[no-untyped-def]
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from repro.detseg.backbone import register
    from repro.tasks import ade20k, coco

    register()
    module = coco if task == "coco" else ade20k
    cfg = module.build(config(task, name, model, upstream(runs, model)), runs / "run")
    scope = "mmdet" if task == "coco" else "mmseg"
    init_default_scope(scope)
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"])
    __import__(f"{scope}.models")
    __import__(f"{scope}.datasets")
    model_ = registry.MODELS.build(cfg.model)
    model_.init_weights()
    first = next(model_.backbone.parameters()).detach().clone()
    up = ckpt.read(ckpt.checkpoints(runs / f"up-{model.lower()}")[0])["model"]
    assert torch.equal(first, next(iter(up.values())))  # the upstream's weights, not a fresh initialisation
    dataset = registry.DATASETS.build(cfg.train_dataloader.dataset)
    data = model_.data_preprocessor(pseudo_collate([dataset[i] for i in range(2)]), True)
    losses = model_(**data, mode="loss")
    loss = sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v) for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(loss)
    loss.backward()
    torch.optim.SGD(model_.parameters(), lr=0.1).step()
    assert not torch.equal(next(model_.backbone.parameters()), first)


@pytest.mark.slow
def test_coco_runner_run_writes_ap_and_resumes(runs) -> None:  # type: ignore[no-untyped-def]
    from repro.tasks import coco

    up = upstream(runs, "Swin-Tiny")
    run = runs / "det"
    coco.run(config("coco", "retinanet-1x", "Swin-Tiny", up), run)
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) >= {"ap_box", "ap_box_50", "ap_box_75"} and 0 <= summary["ap_box"] <= 100
    assert run_info(run).state == "finished"
    first = (run / "mm" / "epoch_1.pth").stat().st_mtime_ns
    (run / "summary.json").unlink()  # a longer schedule in the same directory: resumes after epoch 1
    coco.run(config("coco", "retinanet-1x", "Swin-Tiny", up, epochs=2), run)
    assert (run / "mm" / "epoch_1.pth").stat().st_mtime_ns == first and (run / "mm" / "epoch_2.pth").is_file()
    logs = "".join(p.read_text() for p in (run / "mm").glob("*/*.log"))
    assert "resumed epoch: 1" in logs.lower()
    assert "Epoch(val)" not in logs and "Epoch(test)" in logs  # evaluated once, after training


@pytest.mark.slow
def test_a_diverged_detector_is_an_error_not_ap_zero(runs) -> None:  # type: ignore[no-untyped-def]
    """mmengine logs a NaN loss and trains on; the run then scored AP 0.0 and was 'finished'."""
    from repro.tasks import coco

    run = runs / "det"
    with pytest.raises(RuntimeError, match="not finite after training"):
        coco.run(config("coco", "retinanet-1x", "Swin-Tiny", upstream(runs, "Swin-Tiny"),
                        lr_scale={"retinanet-1x": 1e30}), run)
    assert not (run / "summary.json").exists()


def test_lr_scale_multiplies_the_shipped_learning_rate(runs) -> None:  # type: ignore[no-untyped-def]
    from repro.errors import UserError
    from repro.tasks import ade20k, coco

    up = upstream(runs, "Swin-Tiny")
    shipped = coco.build(config("coco", "cascade-mask-rcnn-1x", "Swin-Tiny", up), runs / "a")
    scaled = coco.build(config("coco", "cascade-mask-rcnn-1x", "Swin-Tiny", up,
                               lr_scale={"cascade-mask-rcnn-1x": 2, "retinanet-1x": 8}), runs / "b")
    assert shipped.optim_wrapper.optimizer.lr == pytest.approx(2e-4)  # ConvNeXt's AdamW
    assert scaled.optim_wrapper.optimizer.lr == pytest.approx(4e-4)
    seg = ade20k.build(config("ade20k", "upernet-80k", "Swin-Tiny", up, lr_scale={"upernet-80k": 10}), runs / "c")
    assert seg.optim_wrapper.optimizer.lr == pytest.approx(6e-4)
    with pytest.raises(UserError, match="lr_scale"):
        coco.build(config("coco", "retinanet-1x", "Swin-Tiny", up, lr_scale={"retinanet-1x": 0}), runs / "d")


def test_the_proxy_retinanet_clips_its_gradient_norm(runs) -> None:  # type: ignore[no-untyped-def]
    """At 8x its learning rate one spike made a proxy RetinaNet NaN; the shipped config (and Cascade) clip nothing."""
    from repro.tasks import coco

    up = upstream(runs, "Swin-Tiny")
    retina = coco.build(config("coco", "retinanet-1x", "Swin-Tiny", up), runs / "a")
    assert retina.optim_wrapper.clip_grad == {"max_norm": 1.0, "norm_type": 2}
    cascade = coco.build(config("coco", "cascade-mask-rcnn-1x", "Swin-Tiny", up), runs / "b")
    assert cascade.optim_wrapper.get("clip_grad") is None


@pytest.mark.slow
def test_ade20k_runner_run_writes_miou_single_and_ms_flip(runs) -> None:  # type: ignore[no-untyped-def]
    from repro.tasks import ade20k

    run = runs / "seg"
    ade20k.run(config("ade20k", "upernet-80k", "Swin-Tiny", upstream(runs, "Swin-Tiny"), epochs=2 / 80000), run)
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["miou"] <= 100 and 0 <= summary["miou_ms_flip"] <= 100
    assert (run / "mm" / "iter_2.pth").is_file()


@pytest.mark.parametrize("total", [3, 75, 4000])
def test_a_scaled_warm_up_reaches_the_learning_rate(total: int) -> None:
    """The shipped 500-iteration linear warm-up of a 1x schedule, scaled to a proxy's few iterations, still ends
    at the full learning rate (scaled to one iteration, mmengine's LinearLR stayed at 0.001 x for good: the smoke
    detectors never trained, AP 0.0)."""
    from mmengine.config import Config
    from mmengine.optim.scheduler import LinearLR

    from repro.detseg.runner import scale_iterations

    cfg = Config(dict(param_scheduler=[dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=500),
                                       dict(type="MultiStepLR", by_epoch=True, begin=0, end=12, milestones=[8, 11])],
                      default_hooks=dict(checkpoint=dict(interval=1, by_epoch=True))))
    scale_iterations(cfg, total, 12 * 7330)
    warm = cfg.param_scheduler[0]
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.01)
    scheduler = LinearLR(optimizer, start_factor=0.001, begin=warm.begin, end=warm.end, by_epoch=False)
    for _ in range(max(warm.end, 2)):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
