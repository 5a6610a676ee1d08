"""Bad `repro train` commands, as an adversarial user types them: each is refused before any training step with
exit 2 and one line on stderr that names the flag, and leaves the --output directory as it was (absent stays
absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from image_folder import write_image_folder

from repro.cli import build_parser, main
from repro.commands.train import config_from_args

# 64 Fashion-MNIST images, batches of 16: a valid 1-epoch run of 4 steps (tests/test_train_cli.py)
TINY = ["--model", "test_vit", "--model-kwargs", '{"patch_size": 4}', "--epochs", "1", "--max-train-images", "64",
        "--max-val-images", "32", "-b", "16", "-j", "0"]
# 12 images in class folders (2 classes x 6)
FOLDER = ["--model", "test_resnet", "--dataset", "folder", "--data-dir", "{data}", "--img-size", "32", "-b", "4",
          "-j", "0", "--adapt", "linear"]

# (id, argv with {data} / {file} / {root} / {ckpt} placeholders, what the one line must contain); {root} holds
# data/, file and run/ (a run directory of TINY with --epochs 2)
CASES: list[tuple[str, list[str], list[str]]] = [
    # tracebacks before
    ("deit-patch-grid", ["--model", "deit_tiny_patch16_224", *TINY[4:], "--img-size", "30"],
     ["--img-size", "sizes"]),
    ("swin-patch-grid", ["--model", "swin_tiny_patch4_window7_224", *TINY[4:], "--img-size", "30"],
     ["--img-size", "sizes"]),
    ("opt-unknown", [*TINY, "--opt", "adamx"], ["--opt", "adamw"]),
    ("device-cuda-without-gpu", [*TINY, "--device", "cuda"], ["--device", "cpu"]),
    ("device-cuda-index", [*TINY, "--device", "cuda:99"], ["--device"]),
    ("device-potato", [*TINY, "--device", "potato"], ["--device", "cpu"]),
    ("output-is-a-file", [*TINY, "--output", "{root}", "--experiment", "file"], ["--output", "file"]),
    ("scale-negative", [*TINY, "--scale", "-1", "2"], ["--scale"]),
    # accepted although wrong before
    ("lr-inf", [*TINY, "--lr", "inf"], ["--lr", "finite"]),
    ("lr-nan", [*TINY, "--lr", "nan"], ["--lr", "finite"]),
    ("weight-decay-nan", [*TINY, "--weight-decay", "nan"], ["--weight-decay", "finite"]),
    ("epochs-inf", [*TINY, "--epochs", "inf"], ["--epochs", "finite"]),
    ("scale-inverted", [*TINY, "--scale", "1.0", "0.1"], ["--scale", "0.1 1.0"]),
    ("batch-over-data", [*TINY, "-b", "128"], ["--batch-size", "64"]),
    # messages that named flags which do not exist
    ("img-size-zero", [*TINY, "--img-size", "0"], ["--img-size"]),
    ("eval-every-zero", [*TINY, "--eval-every", "0"], ["--eval-every:"]),
    ("log-interval-zero", [*TINY, "--log-interval", "0"], ["--log-interval"]),
    ("data-dir-missing", [*FOLDER[:5], "/nonexistent/data", *FOLDER[6:]], ["--data-dir", "/nonexistent/data"]),
    # refused only after the imports before, without naming the flag or the fix
    ("warmup-longer-than-run", [*TINY, "--warmup-epochs", "20"], ["--warmup-epochs", "--epochs"]),
    ("warmup-table24-default-on-own-data", [*FOLDER, "--epochs", "5"], ["--warmup-epochs", "20"]),
    ("img-size-below-schedule", [*TINY, "--method", "efficienttrain++", "--adapt", "table10", "--img-size", "64"],
     ["--img-size", "--adapt linear"]),
    # a budget too short to give every stage a step
    ("budget-too-short-for-stages", [*TINY, "--method", "efficienttrain++", "--epochs", "0.2"],
     ["--epochs", "at least"]),
    # an existing run directory with another config
    ("rundir-other-epochs", [*TINY, "--epochs", "3", "--output", "{root}", "--experiment", "run"],
     ["--output", "--epochs 2.0 -> 3.0"]),
    ("rundir-other-lr", [*TINY, "--epochs", "2", "--lr", "0.01", "--output", "{root}", "--experiment", "run"],
     ["--output", "--lr 0.002 -> 0.01"]),
    # further bad values
    ("model-unknown", [*TINY[4:], "--model", "resnet181"], ["--model", "resnet18"]),
    ("dataset-unknown", [*TINY, "--dataset", "imagenet-5k", "--warmup-epochs", "0"], ["--dataset", "--data-dir"]),
    ("folder-without-data-dir", [*TINY, "--dataset", "folder"], ["--data-dir"]),
    ("epochs-negative", [*TINY, "--epochs", "-1"], ["--epochs"]),
    ("batch-zero", [*TINY, "-b", "0"], ["--batch-size"]),
    ("model-kwargs-bad-json", [*TINY[:2], "--model-kwargs", "{bad", *TINY[4:]], ["--model-kwargs", "JSON"]),
    ("model-kwargs-not-a-mapping", [*TINY[:2], "--model-kwargs", "[1]", *TINY[4:]], ["--model-kwargs"]),
    ("method-unknown", [*TINY, "--method", "efficienttrain+++"], ["--method", "efficienttrain++"]),
    ("schedule-unknown", [*TINY, "--schedule", "etpp_typo"], ["--schedule", "etpp"]),
    ("workers-negative", [*TINY, "-j", "-1"], ["--workers"]),
    ("smoothing-above-one", [*TINY, "--smoothing", "1.5"], ["--smoothing"]),
    ("mixup-negative", [*TINY, "--mixup", "-1"], ["--mixup"]),
    ("drop-path-two", [*TINY, "--drop-path", "2"], ["--drop-path"]),
    ("reprob-two", [*TINY, "--reprob", "2"], ["--reprob"]),
    ("crop-pct-zero", [*TINY, "--crop-pct", "0"], ["--crop-pct"]),
        ("max-train-images-zero", [*TINY, "--max-train-images", "0"], ["--max-train-images"]),
    ("model-ema-decay-one", [*TINY, "--model-ema-decay", "1"], ["--model-ema-decay"]),
    ("max-batch-below-batch", [*TINY, "--early-large-batch", "--max-batch-size", "8"],
     ["--max-batch-size", "--batch-size"]),
    ("epochs-not-a-number", [*TINY, "--epochs", "ten"], ["--epochs"]),
    # timm's --input-size C H W, --img-size N
    ("input-size-one-value", [*TINY, "--input-size", "28"], ["--input-size", "3 224 224", "--img-size"]),
    ("input-size-grey", [*TINY, "--input-size", "1", "28", "28"], ["--input-size", "3 28 28"]),
    ("input-size-not-square", [*TINY, "--input-size", "3", "28", "32"], ["--input-size", "square"]),
    ("input-size-and-img-size", [*TINY, "--input-size", "3", "28", "28", "--img-size", "28"],
     ["--input-size", "--img-size"]),
    # timm's --aa: RandAugment, 3a or none
    ("aa-autoaugment", [*TINY, "--aa", "original"], ["--aa", "RandAugment"]),
    ("aa-augmix", [*TINY, "--aa", "augmix-m5-w4-d2"], ["--aa", "augmix"]),
    ("aa-rand-three-ops", [*TINY, "--aa", "rand-m9-n3"], ["--aa", "'n3'"]),
    ("aa-rand-without-magnitude", [*TINY, "--aa", "rand-mstd0.5"], ["--aa", "magnitude"]),
    ("randaug-magnitude-is-gone", [*TINY, "--randaug-magnitude", "9"], ["--randaug-magnitude"]),
    # timm's batch: -b per process, --grad-accum-steps, or --global-batch-size
    ("global-batch-and-per-process-batch", [*TINY, "--global-batch-size", "32"], ["--global-batch-size", "-b"]),
    ("grad-accum-zero", [*TINY, "--grad-accum-steps", "0"], ["--grad-accum-steps"]),
    ("grad-accum-does-not-split-the-batch", [*TINY[:-4], *TINY[-2:], "--grad-accum-steps", "3"],
     ["--grad-accum-steps", "64", "-b"]),
    ("global-batch-over-data", [*TINY[:-4], *TINY[-2:], "--global-batch-size", "128"],
     ["--global-batch-size", "64"]),
    ("micro-batch-size-is-gone", [*TINY, "--micro-batch-size", "8"], ["--micro-batch-size"]),
    # further timm flags
    ("sched-step", [*TINY, "--sched", "step"], ["--sched", "cosine"]),
    ("opt-betas-above-one", [*TINY, "--opt-betas", "0.9", "1.5"], ["--opt-betas", "0.999"]),
    ("num-classes-below-the-data", [*TINY, "--num-classes", "5"], ["--num-classes", "10"]),
    ("num-classes-zero", [*TINY, "--num-classes", "0"], ["--num-classes"]),
    ("initial-checkpoint-missing", [*TINY, "--initial-checkpoint", "/nonexistent.pt"],
     ["--initial-checkpoint", "no such file"]),
    ("initial-checkpoint-not-weights", [*TINY, "--initial-checkpoint", "{file}"],
     ["--initial-checkpoint", "not a checkpoint"]),
    ("pretrained-path-not-weights", [*TINY, "--pretrained-path", "{file}"], ["--pretrained-path"]),
    ("pretrained-and-initial-checkpoint", [*TINY, "--pretrained", "--initial-checkpoint", "{ckpt}"],
     ["--initial-checkpoint", "--pretrained"]),
    ("resume-missing", [*TINY, "--resume", "/nonexistent.pt"], ["--resume", "no such file"]),
    ("resume-not-a-checkpoint", [*TINY, "--resume", "{ckpt}"], ["--resume", "not a repro checkpoint"]),
    ("resume-another-config", [*TINY, "--resume", "{root}/run/checkpoint-000000004.pt"],
     ["--resume", "--epochs 2.0 -> 1.0"]),
    ("resume-into-a-run-with-checkpoints", [*TINY, "--output", "{root}", "--experiment", "own", "--resume", "{ckpt}"],
     ["--resume", "checkpoints of its own"]),
    ("experiment-is-a-path", [*TINY, "--experiment", "a/b"], ["--experiment", "--output"]),
    ("unknown-flag", [*TINY, "--final-size", "28"], ["--final-size", "--input-size"]),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny image folder, a plain file, and a run directory that a 2-epoch config started."""
    root = tmp_path_factory.mktemp("probe")
    write_image_folder(root / "data")
    (root / "file").write_text("not a directory\n")
    run = root / "run"
    run.mkdir()
    cfg = config_from_args(build_parser().parse_args(["train", *TINY, "--epochs", "2"]))
    (run / "train_config.json").write_text(json.dumps(cfg.model_dump(), indent=2, sort_keys=True) + "\n")
    (root / "checkpoint-000000004.pt").write_text("not a checkpoint\n")
    (run / "checkpoint-000000004.pt").write_text("not a checkpoint\n")
    own = root / "own"  # a run directory of TINY's config with a checkpoint of its own
    own.mkdir()
    cfg = config_from_args(build_parser().parse_args(["train", *TINY]))
    (own / "train_config.json").write_text(json.dumps(cfg.model_dump(), indent=2, sort_keys=True) + "\n")
    (own / "checkpoint-000000002.pt").write_text("not a checkpoint\n")
    return {"data": root / "data", "file": root / "file", "root": root, "ckpt": root / "checkpoint-000000004.pt"}


def _snapshot(path: Path) -> dict[str, bytes] | None:
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"dir" for p in sorted(path.rglob("*"))}


@pytest.mark.parametrize("argv,expected", [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_bad_train_command_is_one_line_and_changes_nothing(
    argv: list[str], expected: list[str], places: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if any(a.startswith("cuda") for a in argv):  # the same answer on a machine with GPUs
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    values = {k: str(v) for k, v in places.items()}
    for name, value in values.items():
        argv = [a.replace("{" + name + "}", value) for a in argv]
    if "--output" not in argv:
        argv += ["--output", str(tmp_path / "out")]
    out = Path(argv[argv.index("--output") + 1])
    before = _snapshot(out)
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["train", *argv]))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0], lines[0]
    assert _snapshot(out) == before


def test_the_probe_covers_the_reported_commands() -> None:
    assert len(CASES) >= 34 and len({c[0] for c in CASES}) == len(CASES)
