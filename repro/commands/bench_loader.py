"""``repro bench loader``: the data loader's CPU cost of a whole ET++ run against a whole baseline run.

ET++ processes 454.6 real epochs against the baseline's 300 (Table 6), through a per-image pipeline (read, JPEG
decode, crop, RandAugment, reduction to B, normalisation, erasing) whose decode does not shrink with B; a loader
sized for the baseline then starves the model in ET++'s small-B stages. Per-image CPU seconds are measured on a
generated ImageNet-like JPEG folder (:mod:`repro.data.synthetic`) for the baseline (B = 224) and each ET++
stage (96 / 160 / 224, the curriculum's real epochs per stage), for three paths, interleaved repeat by repeat:

    today       full decode, crop to 224, RandAugment at 224, ET++'s low-pass + Lanczos to B (Sec. 5.2)
    draft       the same order; JPEG decoded at 1/2, 1/4, 1/8 scale when the crop keeps >= B pixels per side
    draft_early draft + ``reduce_at_crop``: one Lanczos resize from the crop to B, flip and RandAugment at B

``loader_ratio`` of a path = (sum over ET++ stages of epochs x cost at B) / (300 x that path's baseline cost);
each repeat gives one ratio (both arms timed within the repeat), the JSON keeps the median and the range.
``draft_deviation`` is the relative L2 of draft + Lanczos against full decode + Lanczos to B on the same crops,
next to the JPEG encoding's own error at B (quality 90 against the lossless generated image) for scale.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("results/bench/loader.json")
PATHS = {"today": {"draft": False}, "draft": {"draft": True},
         "draft_early": {"draft": True, "reduce_at_crop": True}}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("loader", help="loader CPU cost of a whole ET++ run vs a baseline run (JPEG, draft decoding)")
    p.add_argument("--images", type=int, default=240, help="generated JPEGs (default: 240)")
    p.add_argument("--folder", type=Path, default=None, help="where to generate them (default: a temporary folder)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default: 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the JSON (default: {DEFAULT_OUT})")
    p.add_argument("--no-write", dest="write", action="store_false", help="only print")
    p.set_defaults(run=run)


def stage_plan() -> tuple[list[tuple[int, float, float]], list[tuple[int, float, float]]]:
    """(B, real epochs, mean RandAug m) per stage of the paper's ET++ curriculum and of the baseline."""
    from repro.core.curriculum import build

    def plan(name: str) -> list[tuple[int, float, float]]:
        c = build(name)
        return [(s.resolution, s.epochs, c.magnitude_at((s.start + s.end) / 2)) for s in c.stages]

    return plan("etpp"), plan("baseline")


def _dataset(folder: Path, path: str, frequency_op: str) -> Any:
    from repro.data.datasets import build_dataset
    from repro.data.transforms import Augment, CurriculumDataset, CurriculumTransform

    base = build_dataset("folder", "train", folder, undecoded=True)
    return CurriculumDataset(base, CurriculumTransform(Augment(224, frequency_op, **PATHS[path])))  # type: ignore[arg-type]


def per_image_seconds(ds: Any, b: int, m: float) -> float:
    t0 = time.process_time()
    for i in range(len(ds)):
        ds[(i, b, m, i)]
    return (time.process_time() - t0) / len(ds)


def decode_seconds(folder: Path, scale: int) -> float:
    """Read + decode of every train JPEG at 1/``scale`` (the floor under any B: entropy decoding is not reduced)."""
    from PIL import Image

    files = sorted((folder / "train").glob("*/*.JPEG"))
    t0 = time.process_time()
    for f in files:
        img = Image.open(io.BytesIO(f.read_bytes()))
        img.draft("RGB", (img.width // scale, img.height // scale))
        img.load()
    return (time.process_time() - t0) / len(files)


def loader_costs(folder: Path, repeats: int) -> dict[str, Any]:
    etpp, baseline = stage_plan()
    arms = {(path, "etpp", b): (_dataset(folder, path, "downsample"), b, m) for path in PATHS for b, _, m in etpp}
    arms |= {(path, "baseline", b): (_dataset(folder, path, "none"), b, m) for path in PATHS for b, _, m in baseline}
    for ds, b, m in arms.values():
        ds[(0, b, m, 0)]  # lazy imports and RandAugment instances outside the timing
    times: dict[tuple[str, str, int], list[float]] = {key: [] for key in arms}
    decode: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for key, (ds, b, m) in arms.items():
            times[key].append(per_image_seconds(ds, b, m))
        for scale in decode:
            decode[scale].append(decode_seconds(folder, scale))
    result: dict[str, Any] = {}
    base_epochs = sum(e for _, e, _ in baseline)
    for path in PATHS:
        ratios = []
        for r in range(repeats):
            et = sum(e * times[(path, "etpp", b)][r] for b, e, _ in etpp)
            base = sum(e * times[(path, "baseline", b)][r] for b, e, _ in baseline)
            ratios.append(et / base)
        result[path] = {
            "loader_ratio": statistics.median(ratios), "loader_ratio_range": [min(ratios), max(ratios)],
            "per_image_us": {f"{run}_{b}": 1e6 * statistics.median(times[(path, run, b)])
                             for (p, run, b) in times if p == path},
            "etpp_cpu_s_per_image_of_dataset": sum(e * statistics.median(times[(path, "etpp", b)]) for b, e, _ in etpp),
            "baseline_cpu_s_per_image_of_dataset": base_epochs * statistics.median(times[(path, "baseline", 224)]),
        }
    for path in ("draft", "draft_early"):
        r = [sum(e * times[(path, "etpp", b)][i] for b, e, _ in etpp)
             / sum(e * times[("today", "etpp", b)][i] for b, e, _ in etpp) for i in range(repeats)]
        result[path]["etpp_vs_today"] = statistics.median(r)
        result[path]["etpp_vs_today_range"] = [min(r), max(r)]
    return {"paths": result, "decode_only_us": {f"1/{s}": 1e6 * statistics.median(v) for s, v in decode.items()}}


def draft_deviation(folder: Path, sizes: tuple[int, ...] = (96, 160), images: int | None = None) -> dict[str, Any]:
    """Relative L2 (on 0-255 pixels) of draft decode + Lanczos vs full decode + Lanczos to B on the same crops,
    over the images whose crop is drafted; and, for scale, of the quality-90 JPEG vs the lossless image at B."""
    import numpy as np
    from PIL import Image

    from repro.data.datasets import build_dataset
    from repro.data.synthetic import natural_image
    from repro.data.transforms import Augment, CurriculumTransform, draft_scale, seed_everything

    base = build_dataset("folder", "train", folder, undecoded=True)
    n = min(len(base), images or len(base))
    full = CurriculumTransform(Augment(224, "downsample", draft=False, reduce_at_crop=True))
    draft = CurriculumTransform(Augment(224, "downsample", draft=True, reduce_at_crop=True))
    lanczos = Image.Resampling.LANCZOS
    out: dict[str, Any] = {}
    for b in sizes:
        errors, drafted = [], 0
        for i in range(n):
            seed_everything(i)
            y, x, h, w = full.crop.get_params(base[i][0], full.crop.scale, full.crop.ratio)
            if draft_scale(min(h, w), b) == 1:
                continue
            drafted += 1
            pair = []
            for t in (full, draft):
                seed_everything(i)
                pair.append(np.asarray(t.resized_crop(base[i][0], b, lanczos, b), dtype=np.float64))
            errors.append(float(np.linalg.norm(pair[1] - pair[0]) / np.linalg.norm(pair[0])))
        # the JPEG encoding's own error through the same crop + Lanczos, on freshly generated lossless images
        rng = np.random.default_rng(0)
        jpeg = []
        for i in range(min(n, 40)):
            img = natural_image(rng, 500, 375)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            decoded = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
            seed_everything(i)
            a = np.asarray(full.resized_crop(img, b, lanczos, b), dtype=np.float64)
            seed_everything(i)
            c = np.asarray(full.resized_crop(decoded, b, lanczos, b), dtype=np.float64)
            jpeg.append(float(np.linalg.norm(c - a) / np.linalg.norm(a)))
        out[str(b)] = {"drafted_fraction": drafted / n, "median": statistics.median(errors) if errors else 0.0,
                       "max": max(errors, default=0.0), "jpeg_q90_median": statistics.median(jpeg),
                       **pipeline_deviation(base, b, n)}
    return out


def pipeline_deviation(base: Any, b: int, n: int) -> dict[str, float]:
    """Relative L2 of the whole train transform's output (RandAugment at m = 9, no erasing) of the draft and
    draft_early paths against today's, same seeds: what a training sample actually changes by."""
    import numpy as np

    from repro.data.transforms import Augment, CurriculumTransform, seed_everything

    ts = {path: CurriculumTransform(Augment(224, "downsample", reprob=0.0, **kw)) for path, kw in PATHS.items()}
    errors: dict[str, list[float]] = {"draft": [], "draft_early": []}
    for i in range(n):
        seed_everything(i)
        ref = ts["today"](base[i][0], b, 9.0)
        for path, e in errors.items():
            seed_everything(i)
            e.append(float((ts[path](base[i][0], b, 9.0) - ref).norm() / ref.norm()))
    return {f"{path}_pipeline_{q}": float(np.percentile(e, p)) for path, e in errors.items()
            for q, p in (("median", 50), ("p90", 90))}


def loader(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from repro.data.synthetic import imagenet_like_folder

    torch.set_num_threads(1)
    folder = imagenet_like_folder(args.folder or Path(tempfile.mkdtemp(prefix="repro-imagenet-like-")),
                                  args.images, seed=args.seed)
    t0 = time.time()
    etpp, baseline = stage_plan()
    return {
        **loader_costs(folder, args.repeats),
        "draft_deviation": draft_deviation(folder),
        "etpp_stages": [{"resolution": b, "epochs": e, "magnitude": m} for b, e, m in etpp],
        "baseline_epochs": sum(e for _, e, _ in baseline),
        "setup": {"images": args.images, "repeats": args.repeats, "seed": args.seed, "jpeg_quality": 90,
                  "torch_threads": 1, "cpu": platform.processor() or platform.machine(),
                  "python": platform.python_version(), "pillow": __import__("PIL").__version__},
        "bench_seconds": time.time() - t0,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    result = loader(args)
    if args.write:
        from repro.launch.rundir import write_json_atomic

        write_json_atomic(args.out, result)
    for path, row in result["paths"].items():
        lo, hi = row["loader_ratio_range"]
        print(f"{path:12s} ET++/baseline loader CPU {row['loader_ratio']:.3f} (range {lo:.3f}-{hi:.3f})")
    json.dump(result["draft_deviation"], sys.stdout)
    print()
    if args.write:
        print(f"written to {args.out}")
    return 0
