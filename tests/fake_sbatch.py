"""A stand-in ``sbatch`` for submission tests, and the scripts a dry run prints, to compare the two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put an ``sbatch`` (and a no-op ``srun``) first on PATH that keeps each script it is given
    (``kept/<n>.sh``) and answers job 100 + n; returns the ``kept`` directory."""
    bin_dir, kept = tmp_path / "bin", tmp_path / "kept"
    bin_dir.mkdir()
    kept.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\nn=$(ls {kept} | wc -l)\ncp "$1" {kept}/$n.sh\n'
                                    'echo "Submitted batch job $((100 + n))"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return kept


def printed_scripts(out: str) -> list[str]:
    """The sbatch scripts a dry run prints, in order."""
    return [part[part.index("#!/bin/bash"):].rstrip("\n") + "\n" for part in out.split("\nsbatch script of ")[1:]]
