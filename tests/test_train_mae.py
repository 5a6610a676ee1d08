"""MAE pre-training in the one engine (Sec. 6.2): ET++'s stages on a masked autoencoder, bit-exact resume, the
summary a pre-training run writes and the settings it refuses."""

from __future__ import annotations

import pytest
from test_train_engine import TINY, assert_same_run, records

from repro.launch.rundir import run_info
from repro.train.config import ConfigError, TrainConfig
from repro.train.engine import Trainer, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# a loader worker: its start-up draws from the global RNG, so masks drawn from it would not survive a resume
MAE = dict(TINY, mae={"decoder": {"dim": 16, "depth": 1, "heads": 2}}, mixup=0.0, cutmix=0.0, augment="none",
           method="efficienttrain++", epochs=2, workers=1)


def test_etpp_mae_resumes_bit_identically_and_finishes_on_its_reconstruction_loss(tmp_path):
    reference = train(TrainConfig(**MAE), tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**MAE, stop_after_steps=3), tmp_path / "b")  # mid-stage 1
    resumed = train(TrainConfig(**MAE), tmp_path / "b")
    assert [s["resolution"] for s in reference["stages"]] == [12, 20, 28]  # the curriculum's B, as supervised
    assert reference["objective"] == "mae" and "top1" not in reference
    for key in ("val_loss", "steps", "equivalent_epochs"):
        assert resumed[key] == reference[key]
    assert_same_run(tmp_path / "a", tmp_path / "b")
    losses = [r["loss"] for r in records(tmp_path / "a") if r["kind"] == "train"]
    assert losses[-1] < losses[0]  # it learns to reconstruct
    info = run_info(tmp_path / "a")
    assert info.state == "finished" and info.summary["val_loss"] == reference["val_loss"]


@pytest.mark.parametrize("setting", [{"mixup": 0.8}, {"cutmix": 1.0}, {"model_ema": True}, {"method": "infobatch"}])
def test_settings_without_meaning_for_mae_are_refused(tmp_path, setting):
    with pytest.raises(ConfigError, match=next(iter(setting))):
        Trainer(TrainConfig(**{**MAE, **setting}), tmp_path / "run")
    assert not (tmp_path / "run").exists()
