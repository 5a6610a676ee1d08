"""The OpenMMLab shims (repro.detseg.compat) against torchvision / mmdet's references, and the smoke proxy's
COCO / ADE20K data (repro.detseg.proxy) through pycocotools."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from repro import detseg  # noqa: F401  (installs the shims before the mm imports below)
from repro.detseg import compat, proxy


def test_nms_through_mmcv_equals_torchvision(one_torch_thread: None) -> None:
    from mmcv.ops import nms
    from torchvision.ops import nms as tv_nms

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=g) * 40], dim=1)
    scores = torch.rand(200, generator=g)
    dets, keep = nms(boxes, scores, 0.5)
    assert torch.equal(keep, tv_nms(boxes, scores, 0.5))
    assert torch.allclose(dets[:, 4], scores[keep])
    # offset=1: mmcv's legacy width x2 - x1 + 1
    two = torch.tensor([[0.0, 0, 9, 9], [5.0, 0, 14, 9]])  # IoU 50/150 with offset 1, 36/126 without
    assert compat.nms(two, torch.tensor([1.0, 0.9]), 0.3, offset=1).tolist() == [0]
    assert compat.nms(two, torch.tensor([1.0, 0.9]), 0.3, offset=0).tolist() == [0, 1]


def test_roi_align_through_mmcv_equals_torchvision_in_value_and_gradient(one_torch_thread: None) -> None:
    from mmcv.ops import roi_align
    from torchvision.ops import roi_align as tv_roi_align

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 20, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.5, 2.0, 10.0, 12.5], [1, 0.0, 0.0, 19.0, 15.0], [1, 4.2, 3.3, 6.1, 9.9]],
                        dtype=torch.float64)
    for aligned in (True, False):
        ours = roi_align(x, rois, (4, 5), 0.5, 2, "avg", aligned)
        ref = tv_roi_align(x, rois, (4, 5), 0.5, 2, aligned)
        assert torch.allclose(ours, ref)
        w = torch.rand_like(ours)
        (g_ours,) = torch.autograd.grad((ours * w).sum(), x)
        (g_ref,) = torch.autograd.grad((ref * w).sum(), x)
        assert torch.allclose(g_ours, g_ref)
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, (2, 2), 1.0, 2, "avg", True), (x,))
    with pytest.raises(NotImplementedError, match="pool_mode='max'"):
        roi_align(x.detach(), rois, (2, 2), 1.0, 2, "max", True)


def test_sigmoid_focal_loss_kernel_equals_mmdets_torch_reference(one_torch_thread: None) -> None:
    from mmcv.ops import sigmoid_focal_loss
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(64, 5, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 6, (64,), generator=g)  # 5 = background
    onehot = torch.nn.functional.one_hot(labels, 6)[:, :5]
    x1, x2 = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    ours = sigmoid_focal_loss(x1, labels, 2.0, 0.25, None, "sum")
    ref = py_sigmoid_focal_loss(x2, onehot, gamma=2.0, alpha=0.25, reduction="sum")
    assert torch.allclose(ours, ref)
    ours.backward()
    ref.backward()
    assert torch.allclose(x1.grad, x2.grad)


def test_other_kernels_name_themselves_and_mmengine_sees_a_full_mmcv() -> None:
    import mmcv._ext as ext
    from mmengine.utils.dl_utils import mmcv_full_available

    assert mmcv_full_available() is False  # asks for the stand-in's __spec__ (a module without one raises)
    with pytest.raises(NotImplementedError, match=r"mmcv\._ext\.deform_conv_forward"):
        ext.deform_conv_forward()
    assert not hasattr(ext, "__file__")  # inspect.getmodule walks sys.modules and reads __file__


def test_runner_checkpoint_state_loads_under_weights_only() -> None:
    from mmengine.logging import HistoryBuffer, MessageHub

    hub = MessageHub("h13-test")
    hub.update_scalar("train/loss", 1.5)
    hub.update_scalar("train/loss", np.float64(0.5))
    buffer = io.BytesIO()
    torch.save({"message_hub": hub.state_dict(), "meta": {"seed": np.int64(3), "arr": np.arange(3)}}, buffer)
    buffer.seek(0)
    state = torch.load(buffer)  # torch's weights_only default
    assert isinstance(state["message_hub"]["log_scalars"]["train/loss"], HistoryBuffer)
    assert state["message_hub"]["log_scalars"]["train/loss"].mean() == 1.0


@pytest.fixture
def proxy_root(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    return tmp_path


def test_coco_proxy_perfect_predictions_score_ap_one(proxy_root) -> None:  # type: ignore[no-untyped-def]
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    root = proxy.coco(train=4, val=12)
    gt = COCO(str(root / "annotations" / "instances_val2017.json"))
    anns = gt.loadAnns(gt.getAnnIds())
    assert min(a["id"] for a in anns) == 1  # pycocotools never matches an annotation with id 0
    assert {a["category_id"] for a in anns} <= set(range(1, 11))
    for kind in ("bbox", "segm"):
        results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                    "segmentation": a["segmentation"], "score": 1.0} for a in anns]
        ev = COCOeval(gt, gt.loadRes(results), kind)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)
        # one shifted box per image no longer matches at IoU 0.75: AP drops below 1
        if kind == "bbox":
            moved = [{**r, "bbox": [r["bbox"][0] + 20, *r["bbox"][1:]]} for r in results]
            ev = COCOeval(gt, gt.loadRes(moved), kind)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ev.stats[0] < 0.9
    assert proxy.coco(train=4, val=12) == root  # generated once


def test_ade_proxy_label_maps_match_the_coco_masks(proxy_root) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image
    from pycocotools import mask as rle

    coco_root, ade_root = proxy.coco(train=3, val=3), proxy.ade20k(train=3, val=3)
    data = json.loads((coco_root / "annotations" / "instances_train2017.json").read_text())
    for image in data["images"]:
        labels = np.asarray(Image.open(ade_root / "ADEChallengeData2016" / "annotations" / "training"
                                       / image["file_name"]))
        expect = np.zeros_like(labels)
        for ann in (a for a in data["annotations"] if a["image_id"] == image["id"]):
            expect[rle.decode({**ann["segmentation"], "counts": ann["segmentation"]["counts"].encode()}) > 0] = \
                ann["category_id"]
        assert np.array_equal(labels, expect) and labels.max() >= 1
