"""`repro train` and `repro eval`: timm's flags -> TrainConfig, a run directory OUTPUT/EXPERIMENT, the same top-1."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from image_folder import write_image_folder

from repro.cli import build_parser, main
from repro.commands.train import config_from_args, proxy_defaults

TINY = ["--model", "test_vit", "--model-kwargs", '{"patch_size": 4}', "--epochs", "1", "--max-train-images", "64",
        "--max-val-images", "32", "-b", "16", "-j", "0", "--log-interval", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(*argv: str):  # type: ignore[no-untyped-def]
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_flags_map_to_the_config_with_proxy_defaults() -> None:
    cfg = _cfg("--model", "resnet18", "--method", "efficienttrain++", "--lr", "5e-4", "--scale", "0.5", "1",
               "--n-replay", "2", "--early-large-batch", "--no-amp", "--drop-path", "0.1", "--opt-betas", "0.8",
               "0.99", "--num-classes", "12", "--sched", "cosine")
    assert (cfg.model, cfg.method, cfg.lr, cfg.crop_scale, cfg.n_replay) == ("resnet18", "efficienttrain++", 5e-4,
                                                                             (0.5, 1.0), 2)
    assert cfg.early_large_batch and not cfg.amp and cfg.drop_path == 0.1
    assert (cfg.opt_betas, cfg.num_classes) == ((0.8, 0.99), 12)
    assert (cfg.final_size, cfg.adapt, cfg.batch_size) == (28, "linear", 64)  # the proxy profile's


def test_the_proxy_defaults_are_the_proxy_profiles() -> None:
    """One definition of the proxy: repro train on Fashion-MNIST trains what the tables' proxy runs train (Table 7's
    baseline of ResNet-50 under --profile proxy), but the model it names."""
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.launch.resolve import resolve
    from repro.tasks.in1k import train_config

    run = next(r for r in resolve(load_manifest(manifest_path(7)), "proxy", seeds=1)
               if r.spec.model == "ResNet-50" and r.spec.method == "baseline")
    table = train_config(run.config).model_dump()
    mine = _cfg("--model", "ResNet-50").model_dump()
    assert table.pop("model_variant") == "proxy" and mine.pop("model_variant") == "full"
    assert mine == table
    assert (mine["final_size"], mine["batch_size"], mine["randaug_magnitude"], mine["max_train_images"]) == (
        28, 64, 3.0, 2000)


def test_a_change_to_the_proxy_profile_changes_repro_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import repro.launch.manifest as manifest

    (tmp_path / "profiles").mkdir()
    profile = yaml.safe_load((manifest.EXPERIMENTS_DIR / "profiles" / "proxy.yaml").read_text())
    profile["overrides"]["lr"] = 7e-4
    profile["global_batch"] = 32
    (tmp_path / "profiles" / "proxy.yaml").write_text(yaml.safe_dump(profile))
    shutil.copy(manifest.STAND_INS, tmp_path / "stand_ins.yaml")
    monkeypatch.setattr(manifest, "EXPERIMENTS_DIR", tmp_path)
    cfg = _cfg("--model", "resnet18")
    assert (cfg.lr, cfg.batch_size) == (7e-4, 32)
    assert proxy_defaults("resnet18", "baseline")["lr"] == 7e-4


def test_the_proxy_warm_up_keeps_its_share_of_the_run() -> None:
    default, short = _cfg("--model", "resnet18"), _cfg("--model", "resnet18", "--epochs", "3")
    assert short.warmup_epochs == pytest.approx(default.warmup_epochs * 3 / default.epochs)


def test_folder_data_sets_keep_table24_defaults(tmp_path: Path) -> None:
    cfg = _cfg("--model", "resnet50", "--dataset", "imagenet-1k", "--data-dir", str(tmp_path))
    assert (cfg.final_size, cfg.batch_size, cfg.lr, cfg.warmup_epochs, cfg.epochs) == (224, 4096, 4e-3, 20, 300)
    assert cfg.crop_scale == (0.08, 1.0) and cfg.adapt == "table10"
    assert (cfg.augment, cfg.randaug_magnitude, cfg.randaug_std) == ("randaug", 9.0, 0.5)


def test_batch_size_is_per_process_as_in_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "8")
    cfg = _cfg("--model", "resnet18", "-b", "32")
    assert (cfg.batch_size, cfg.micro_batch_size) == (256, 32)  # 8 processes x 32
    cfg = _cfg("--model", "resnet18", "-b", "32", "--grad-accum-steps", "4")
    assert (cfg.batch_size, cfg.micro_batch_size) == (1024, 32)
    cfg = _cfg("--model", "resnet18", "--grad-accum-steps", "2")  # the profile's global 64: 8 x 4 x 2
    assert (cfg.batch_size, cfg.micro_batch_size) == (64, 4)
    cfg = _cfg("--model", "resnet18", "--global-batch-size", "4096")
    assert (cfg.batch_size, cfg.micro_batch_size) == (4096, None)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_NTASKS", "4")  # the engine's reading of the world size
    assert _cfg("--model", "resnet18", "-b", "16").batch_size == 64
    monkeypatch.delenv("SLURM_NTASKS")
    assert _cfg("--model", "resnet18", "-b", "16").batch_size == 16


def test_input_size_is_timms_c_h_w_and_img_size_its_square() -> None:
    assert _cfg("--model", "resnet18", "--input-size", "3", "56", "56").final_size == 56
    assert _cfg("--model", "resnet18", "--img-size", "56").final_size == 56


def test_aa_is_timms_auto_augment_string() -> None:
    cfg = _cfg("--model", "resnet18", "--aa", "rand-m7-mstd0.5-inc1")
    assert (cfg.augment, cfg.randaug_magnitude, cfg.randaug_std) == ("randaug", 7.0, 0.5)
    assert _cfg("--model", "resnet18", "--aa", "rand-m5").randaug_std == 0.0  # timm: no mstd, no noise
    assert _cfg("--model", "resnet18", "--aa", "none").augment == "none"
    assert _cfg("--model", "resnet18", "--aa", "3a").augment == "3augment"


def test_initialisation_flags_map_to_the_config(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    assert _cfg("--model", "resnet18", "--pretrained").pretrained
    for flag in ("--initial-checkpoint", "--pretrained-path"):
        assert _cfg("--model", "resnet18", flag, str(weights)).init_from == str(weights.resolve())


def test_the_run_directory_is_output_experiment(tmp_path: Path) -> None:
    from repro.commands.train import run_dir_of

    args = build_parser().parse_args(["train", "--model", "resnet18", "--method", "efficienttrain++", "--seed", "2"])
    assert run_dir_of(args, config_from_args(args)) == Path("output/train/resnet18-efficienttrain++-seed2")
    args = build_parser().parse_args(["train", "--model", "resnet18", "--output", str(tmp_path), "--experiment", "x"])
    assert run_dir_of(args, config_from_args(args)) == tmp_path / "x"


def test_version_and_no_abbreviations(capsys: pytest.CaptureFixture[str]) -> None:
    import repro

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"repro {repro.__version__}"
    with pytest.raises(SystemExit) as done:  # not taken for --epochs
        main(["train", "--model", "resnet18", "--epoch", "2"])
    assert done.value.code == 2
    assert "did you mean --epochs?" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "torchrun --nproc_per_node 8" in text and "--resume" in text


def test_pretrained_weights_that_cannot_be_fetched_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import timm.models._builder as builder

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(builder, "load_pretrained", offline)
    assert main(["train", *TINY, "--pretrained", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pretrained" in err[0] and "--initial-checkpoint" in err[0]
    assert not any(tmp_path.iterdir())


def test_bad_flags_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *TINY, "-b", "0", "--output", str(tmp_path)]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["train", "--model", "resnet18", "--dataset", "folder", "--output", str(tmp_path)]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_run_directory_resumes_only_its_own_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--output", str(tmp_path), "--experiment", "run"]
    run = tmp_path / "run"
    assert main(["train", *TINY, *where]) == 0
    saved = (run / "train_config.json").read_text()
    steps = json.loads((run / "summary.json").read_text())["steps"]
    capsys.readouterr()
    for other in (["--epochs", "2"], ["--lr", "0.01"]):
        assert main(["train", *TINY, *other, *where]) == 2
        err = capsys.readouterr().err
        assert "holds a run of another config" in err and "new --experiment" in err
    assert "--lr 0.002 -> 0.01" in err
    assert (run / "train_config.json").read_text() == saved
    assert main(["train", *TINY, "-j", "1", *where]) == 0  # same config (other workers): resumes
    assert f"resumed from step {steps} of {steps}" in capsys.readouterr().out


def test_resume_a_given_checkpoint_into_a_new_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from repro.train import checkpoint as ckpt

    assert main(["train", *TINY, "--output", str(tmp_path), "--experiment", "a"]) == 0
    first = json.loads((tmp_path / "a" / "summary.json").read_text())
    oldest = ckpt.checkpoints(tmp_path / "a")[-1]
    capsys.readouterr()
    assert main(["train", *TINY, "--output", str(tmp_path), "--experiment", "b", "--resume", str(oldest)]) == 0
    assert f"resumed from {oldest} at step" in capsys.readouterr().out
    again = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert (again["steps"], again["top1"]) == (first["steps"], first["top1"])


@pytest.mark.slow
def test_train_then_eval_gives_the_summary_top1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["--method", "efficienttrain++", "--output", str(tmp_path), "--experiment", "run", "--format", "json"]
    assert main(["train", *TINY, *argv]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "efficienttrain++" and summary["top1"] == json.loads(capsys.readouterr().out)["top1"]
    assert [s["resolution"] for s in summary["stages"]] == [12, 20, 28]
    assert main(["eval", str(run), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1"] == summary["top1"] and result["step"] == summary["steps"]
    assert not (run / ".eval").exists()


@pytest.mark.slow
def test_train_on_an_image_folder_then_eval_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    write_image_folder(tmp_path / "data")
    monkeypatch.setenv("REPRO_DATA_FOLDER", str(tmp_path / "data"))
    argv = ["train", "--model", "test_resnet", "--dataset", "folder", "--input-size", "3", "32", "32", "--epochs",
            "1", "-b", "4", "-j", "0", "--warmup-epochs", "0", "--method", "efficienttrain", "--adapt", "linear",
            "--output", str(tmp_path), "--experiment", "r"]
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["steps"] >= 3 and 0 <= summary["top1"] <= 100
    shutil.move(tmp_path / "data", tmp_path / "moved")  # evaluated on another machine: the data lie elsewhere
    monkeypatch.delenv("REPRO_DATA_FOLDER")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--format", "json"]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "r"), "--data-dir", str(tmp_path / "moved"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == summary["top1"]


def test_initial_checkpoint_starts_from_a_checkpoint_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from repro.train import checkpoint as ckpt

    assert main(["train", *TINY, "--output", str(tmp_path), "--experiment", "a"]) == 0
    newest = ckpt.checkpoints(tmp_path / "a")[0]
    plain = tmp_path / "weights.pt"  # timm train.py's layout
    torch.save({"state_dict": ckpt.read(newest)["model"]}, plain)
    for name, source in (("b", newest), ("c", plain)):
        assert main(["train", *TINY, "--num-classes", "12", "--initial-checkpoint", str(source), "--output",
                     str(tmp_path), "--experiment", name]) == 0, capsys.readouterr().err
        assert json.loads((tmp_path / name / "train_config.json").read_text())["init_from"] == str(source.resolve())


def _readme_train_commands() -> list[list[str]]:
    """The `repro train` command lines of the README's and the `--help` examples (continuations joined), as argv
    after `train`."""
    import re
    import shlex

    texts = [(Path(__file__).resolve().parents[1] / "README.md").read_text()]
    with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:
        build_parser().parse_args(["train", "--help"])
    texts.append(out.getvalue())
    commands = []
    for text in texts:
        for line in re.sub(r"\\\n\s*", " ", text).splitlines():
            line = line.split("#")[0].strip()
            words = shlex.split(line) if line.startswith(("repro train", "torchrun", "srun")) else []
            if "train" in words and "..." not in words:
                commands.append(words[words.index("train") + 1:])
    return commands


def test_the_documented_examples_parse_into_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `repro train` example of the README and of `--help` is a valid command: flags that exist, values
    they accept, a config the engine would train (the torchrun lines with their 8 processes)."""
    commands = _readme_train_commands()
    assert len(commands) >= 6
    for argv in commands:
        monkeypatch.setenv("WORLD_SIZE", "8" if "deit_small_patch16_224" in argv else "1")
        cfg = _cfg(*argv)
        if "deit_small_patch16_224" in argv:
            assert cfg.batch_size == 4096  # 8 processes x -b 512: the paper's global batch


@pytest.mark.parametrize(("line", "completion"), [("repro tr", "train"), ("repro train --grad", "--grad-accum-steps"),
                                                  ("repro submit 7 --prof", "--profile")])
def test_the_shell_completes_commands_and_flags(line: str, completion: str) -> None:
    """`eval "$(register-python-argcomplete repro)"` in a shell: the installed `repro` answers its completion
    protocol (argcomplete: the line in COMP_LINE, the answer on file descriptor 8)."""
    import os
    import subprocess
    import sys

    repro = Path(sys.executable).with_name("repro")
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": " ", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "COMP_TYPE": "9"}
    done = subprocess.run(["bash", "-c", f"'{repro}' 8>&1 9>/dev/null"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and completion in done.stdout.split()
