"""`repro sync`: finds offline wandb runs in run directories; refuses clearly without credentials."""

from __future__ import annotations

from repro.cli import main


def test_sync_lists_and_needs_credentials(tmp_path, monkeypatch, capsys):
    assert main(["sync", "--runs", str(tmp_path)]) == 0
    assert "no offline wandb runs" in capsys.readouterr().out
    run = tmp_path / "resnet-50-baseline-abc" / "wandb" / "offline-run-20261123_010101-xyz"
    run.mkdir(parents=True)
    assert main(["sync", "--runs", str(tmp_path), "--dry-run"]) == 0
    assert f"would sync {run}" in capsys.readouterr().out
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["sync", "--runs", str(tmp_path)]) == 2
    assert "no wandb credentials" in capsys.readouterr().err
