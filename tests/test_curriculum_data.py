"""Curricula as data (files, manifests), the circular filters of Fig. 2 and the curricula of Sec. 4's studies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from repro.cli import main
from repro.core.curriculum import build, from_data, get_spec, load, to_data
from repro.core.frequency import circular_filter
from repro.errors import UserError
from repro.launch.manifest import load_manifest
from repro.launch.resolve import resolve
from repro.methods.frequency_studies import curriculum as study_curriculum

ETPP_FILE = {"name": "etpp-file", "axis": "compute", "budget": 200, "magnitude": [0, 9],
             "stages": [{"until": 0.2, "B": 96}, {"until": 0.6, "B": 160}, {"until": 1.0, "B": 224}]}


@pytest.mark.parametrize("name", ["etpp", "et", "et-linear", "etpp-discrete", "baseline"])
def test_presets_round_trip_through_data(name: str) -> None:
    preset = build(name, final_size=56, adapt="linear")
    again = build(from_data(json.loads(json.dumps(to_data(get_spec(name))))), final_size=56, adapt="linear")
    assert again.stages == preset.stages and again.equivalent_epochs == pytest.approx(preset.equivalent_epochs)


def test_a_file_equals_the_preset_it_spells(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(ETPP_FILE))
    assert build(load(path)).stages == build("etpp").stages


@pytest.mark.parametrize("bad, words", [
    ({"stages": [{"until": 0.5, "B": 96}, {"until": 1.0, "B": 224}]}, "no RandAug m"),
    ({"stages": [{"until": 0.5, "B": 96, "m": 1}, {"until": 0.4, "B": 224, "m": 9}]}, "increase"),
    ({"stages": [{"until": 1.0, "B": 256, "m": 9}]}, "above the reference size"),
    ({"stages": [{"until": 1.0, "B": 224, "m": 9, "speed": 2}]}, "stages.0.speed"),
])
def test_bad_curriculum_data_is_one_line(bad: dict, words: str) -> None:
    with pytest.raises(UserError, match=words) as err:
        from_data({"name": "x", "axis": "epoch", **bad})
    assert "\n" not in str(err.value)


def test_circular_filters_split_the_spectrum() -> None:
    x = torch.randn(3, 28, 28, generator=torch.Generator().manual_seed(0))
    low, high = circular_filter(x, 5.0), circular_filter(x, 5.0, high=True)
    torch.testing.assert_close(low + high, x, atol=1e-5, rtol=0)
    spec = torch.fft.fftshift(torch.fft.fft2(low), dim=(-2, -1)).abs()
    k = torch.arange(28) - 14
    outside = k[:, None] ** 2 + k[None, :] ** 2 > 25
    assert spec[:, outside].max() < 1e-4 and spec[:, ~outside].min() > 1e-3


@pytest.mark.parametrize("model", ["DeiT-Small", "Swin-Tiny"])
def test_table3_relative_costs_follow_from_the_window_curricula(model: str) -> None:
    """Every relative cost of Table 3 from the lfc curricula, in the model's measured FLOPs per B."""
    from repro.models.cost import TABLE3_PAPER, TABLE3_SIZES
    from repro.models.flops import cost_fn

    cost = cost_fn(model)
    for (cropped, _), papers in TABLE3_PAPER[model].items():
        for window, paper in zip(TABLE3_SIZES, papers, strict=True):
            data = study_curriculum({"lfc_window": window, "lfc_epochs": [1, cropped]}, 300, "lfc-curriculum")
            assert build(data, cost=cost).equivalent_epochs / 300 == pytest.approx(paper, abs=0.0051)


def test_table4_curriculum_lowers_m_and_b_together_then_returns_to_the_baseline() -> None:
    data = study_curriculum({"lfc_window": 128, "lfc_epochs": [1, 150], "randaug_magnitude_early": 3,
                             "early_epochs": [1, 150]}, 300, "lfc-curriculum")
    c = build(data, final_size=56, adapt="linear")
    assert [(s.resolution, s.m_start, s.m_end) for s in c.stages] == [(32, 3, 3), (56, 9, 9)]
    assert c.stages[0].epochs == pytest.approx(150)


def test_et_linear_has_ets_cost() -> None:
    assert build("et-linear").equivalent_epochs == pytest.approx(build("et").equivalent_epochs, rel=0.01)
    sizes = build("et-linear").resolutions
    assert list(sizes) == sorted(sizes) and sizes[-1] == 224


def test_study_runs_resolve_to_their_curriculum_as_identity() -> None:
    runs = {r.key + r.row: r for r in resolve(load_manifest("experiments/table02.yaml"), "smoke")}
    r = runs["r401st-150th ep / 151th-300th ep"]
    stages = r.config["schedule"]["stages"]
    assert [(s["until"], s.get("lowpass")) for s in stages] == [(0.5, 40.0), (1.0, None)]
    assert "lowpass_radius" not in r.config
    assert len({run.run_id for run in runs.values()}) == 13


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_repro_train_accepts_a_curriculum_file_and_stores_its_content(tmp_path: Path) -> None:
    data = {"name": "lowpass-then-original", "axis": "epoch", "budget": 2, "reference_size": 28,
            "stages": [{"until": 0.5, "B": 20, "m": 2, "lowpass": 6}, {"until": 1.0, "B": 28, "m": 9}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    run = tmp_path / "run"
    argv = ["train", "--model", "test_vit", "--model-kwargs", '{"patch_size": 4}', "--max-train-images", "64",
            "--max-val-images", "32", "-b", "16", "-j", "0", "--method", "efficienttrain", "--schedule", str(path),
            "--output", str(run.parent), "--experiment", run.name]
    assert main(argv) == 0
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["schedule"] == data and saved["epochs"] == 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["schedule"] == "lowpass-then-original"
    assert [s["resolution"] for s in summary["stages"]] == [20, 28]
