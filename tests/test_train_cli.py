"""`repro train` and `repro eval` (issue 4, point 4): flags -> TrainConfig, a run directory, the same top-1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from image_folder import write_image_folder

from repro.cli import build_parser, main
from repro.commands.train import PROXY_DEFAULTS, config_from_args

TINY = ["--model", "test_vit", "--model-kwargs", '{"patch_size": 4}', "--epochs", "1", "--max-train-images", "64",
        "--max-val-images", "32", "-b", "16", "-j", "0", "--log-interval", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(*argv: str):  # type: ignore[no-untyped-def]
    return config_from_args(build_parser().parse_args(["train", "--out", "x", *argv]))


def test_flags_map_to_the_config_with_proxy_defaults() -> None:
    cfg = _cfg("--model", "resnet18", "--method", "efficienttrain++", "--lr", "5e-4", "--scale", "0.5", "1",
               "--n-replay", "2", "--early-large-batch", "--no-amp", "--drop-path", "0.1")
    assert (cfg.model, cfg.method, cfg.lr, cfg.crop_scale, cfg.n_replay) == ("resnet18", "efficienttrain++", 5e-4,
                                                                             (0.5, 1.0), 2)
    assert cfg.early_large_batch and not cfg.amp and cfg.drop_path == 0.1
    assert (cfg.final_size, cfg.adapt, cfg.batch_size) == (28, "linear", 256)  # the proxy geometry
    assert cfg.warmup_epochs == pytest.approx(PROXY_DEFAULTS["warmup_fraction"] * PROXY_DEFAULTS["epochs"])


def test_folder_data_sets_keep_table24_defaults(tmp_path: Path) -> None:
    cfg = _cfg("--model", "resnet50", "--dataset", "imagenet-1k", "--data-dir", str(tmp_path))
    assert (cfg.final_size, cfg.batch_size, cfg.lr, cfg.warmup_epochs, cfg.epochs) == (224, 4096, 4e-3, 20, 300)
    assert cfg.crop_scale == (0.08, 1.0) and cfg.adapt == "table10"


def test_bad_flags_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *TINY, "-b", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["train", "--model", "resnet18", "--dataset", "folder", "--out", str(tmp_path / "r")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_run_directory_resumes_only_its_own_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    saved = (run / "train_config.json").read_text()
    steps = json.loads((run / "summary.json").read_text())["steps"]
    capsys.readouterr()
    for other in (["--epochs", "2"], ["--lr", "0.01"]):
        assert main(["train", *TINY, *other, "--out", str(run)]) == 2
        err = capsys.readouterr().err
        assert "holds a run of another config" in err and "new --out" in err
    assert "--lr 0.001 -> 0.01" in err
    assert (run / "train_config.json").read_text() == saved
    assert main(["train", *TINY, "-j", "1", "--out", str(run)]) == 0  # same config (other workers): resumes
    assert f"resumed from step {steps} of {steps}" in capsys.readouterr().out


@pytest.mark.slow
def test_train_then_eval_gives_the_summary_top1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY, "--method", "efficienttrain++", "--out", str(run), "--format", "json"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "efficienttrain++" and summary["top1"] == json.loads(capsys.readouterr().out)["top1"]
    assert [s["resolution"] for s in summary["stages"]] == [12, 20, 28]
    assert main(["eval", str(run), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1"] == summary["top1"] and result["step"] == summary["steps"]
    assert not (run / ".eval").exists()


@pytest.mark.slow
def test_train_on_an_image_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image_folder(tmp_path / "data")
    monkeypatch.setenv("REPRO_DATA_FOLDER", str(tmp_path / "data"))
    argv = ["train", "--model", "test_resnet", "--dataset", "folder", "--input-size", "32", "--epochs", "1",
            "-b", "4", "-j", "0", "--warmup-epochs", "0", "--method", "efficienttrain", "--adapt", "linear",
            "--out", str(tmp_path / "r")]
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["steps"] >= 3 and 0 <= summary["top1"] <= 100
