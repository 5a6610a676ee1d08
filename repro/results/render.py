"""Render a paper-vs-reproduced frame (:func:`repro.results.collect.reproduce`) as Markdown, CSV, LaTeX and plots.

Every reproduced cell is shown next to the paper's, with the delta; proxy numbers (the smoke profile) are
labelled as such, and holes say why they are holes (missing, partial, corrupt run, no runner yet).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from repro.launch.manifest import Manifest, cell_value
from repro.launch.rundir import is_finite_number

CSV_COLUMNS = ["row", "column", "paper", "reproduced", "std", "n", "delta", "within_tolerance", "profile", "run_id",
               "status", "measure", "wall_time_ratio"]


def _decimals(x: float) -> int:
    exponent = Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def column_decimals(manifest: Manifest) -> dict[str, int]:
    """Decimals the paper prints in each column (the most any of its cells has; 2 for a column of dashes).
    Reproduced values and deltas are shown with one digit more: enough to see a difference, no float noise."""
    out = {}
    for col in manifest.columns:
        values = [v for row in manifest.rows if (v := cell_value(row.cells[col.key])) is not None]
        out[col.key] = max((_decimals(v) for v in values), default=2)
    return out


def _num(x: object, digits: int) -> str:
    return f"{float(x):.{digits}f}" if is_finite_number(x) else "–"  # type: ignore[arg-type]


def _cell(r: Any, digits: int) -> str:
    if not is_finite_number(r.reproduced):
        hole = "" if r.status in ("not reproduced",) else f" ({r.status})"
        return f"{_num(r.paper, digits)} / –{hole}"
    shown = f"{_num(r.paper, digits)} / **{_num(r.reproduced, digits + 1)}**"
    if is_finite_number(r.std):  # several seeds: their spread and count
        shown += f" ± {_num(r.std, digits + 1)} (n={r.n})"
    return shown + (f" ({r.delta:+.{digits + 1}f})" if is_finite_number(r.delta) else "")


def _wide(manifest: Manifest, frame: pd.DataFrame, render) -> list[list[str]]:  # type: ignore[no-untyped-def]
    cells = {(r.row, r.column): r for r in frame.itertuples()}
    digits = column_decimals(manifest)
    return [[row.label] + [render(cells[row.label, col.key], digits[col.key]) for col in manifest.columns]
            for row in manifest.rows]


def counts(frame: pd.DataFrame) -> str:
    """How many cells are filled and how many of those agree with the paper within their column's tolerance."""
    filled = frame.dropna(subset=["reproduced"])
    judged = filled[filled["within_tolerance"].notna()]
    within = int((judged["within_tolerance"] == True).sum())  # noqa: E712
    return (f"{len(filled)} of {len(frame)} cells filled; {within} of the {len(judged)} filled cells with a "
            "tolerance are within it")


def to_markdown(manifest: Manifest, frame: pd.DataFrame) -> str:
    profile = str(frame["profile"].iloc[0]) if len(frame) else "?"
    proxy = bool(frame["proxy"].iloc[0]) if len(frame) else False
    kind = "proxy numbers (Fashion-MNIST, CPU): compare trends, not values" if proxy else "paper setting"
    header = [""] + [f"{c.label} ({c.unit})" if c.unit else c.label for c in manifest.columns]
    lines = [
        f"### Table {manifest.table}: {manifest.title}",
        "",
        f"Each cell: paper / **reproduced** (delta); with several seeds, reproduced is their mean ± std (n). "
        f"Profile `{profile}` -- {kind}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _wide(manifest, frame, _cell)]
    lines += ["", counts(frame) + "."]
    if (frame["measure"] == "cpu_time").any():
        lines += ["", "Wall-time speedups of runs on CPU are ratios of training CPU time (the process and its "
                  "data-loader workers; the two runs of a ratio trained in turns), which a competing load on the "
                  "machine moves far less than wall time; the wall-time ratios are in the CSV (`wall_time_ratio`)."]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_")):
        text = text.replace(a, b)
    return text


def to_latex(manifest: Manifest, frame: pd.DataFrame) -> str:
    def cell(r: Any, digits: int) -> str:
        return f"{_num(r.paper, digits)} / {_num(r.reproduced, digits + 1)}"

    cols = "l" + "c" * len(manifest.columns)
    head = " & ".join([""] + [_tex_escape(c.label) for c in manifest.columns]) + r" \\"
    body = [" & ".join(_tex_escape(x) for x in r) + r" \\" for r in _wide(manifest, frame, cell)]
    caption = _tex_escape(f"Table {manifest.table} ({frame['profile'].iloc[0] if len(frame) else ''}): "
                          f"{manifest.title}. Each cell: paper / reproduced.")
    return "\n".join(
        [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}", r"\toprule", head,
         r"\midrule", *body, r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}", ""]
    )


def result_stem(table: int, profile: str) -> str:
    """File name stem of a table's results: each profile has its own (``table07-smoke``, ``table07-full``), so
    rendering one never overwrites another's."""
    return f"table{table:02d}-{profile}"


def write_table(manifest: Manifest, frame: pd.DataFrame, out_dir: str | Path = "results") -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` (:func:`result_stem`) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / result_stem(manifest.table, str(frame["profile"].iloc[0]))
    paths = [stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".tex")]
    paths[0].write_text(to_markdown(manifest, frame))
    _rounded(manifest, frame)[CSV_COLUMNS].to_csv(paths[1], index=False)
    paths[2].write_text(to_latex(manifest, frame))
    return paths


def _rounded(manifest: Manifest, frame: pd.DataFrame) -> pd.DataFrame:
    """Reproduced values, deltas and wall-time ratios at the paper's precision plus one digit (as displayed)."""
    digits = frame["column"].map(column_decimals(manifest)) + 1
    out = frame.copy()
    for name in ("reproduced", "std", "delta", "wall_time_ratio"):
        out[name] = [round(float(v), int(d)) if is_finite_number(v) else None
                     for v, d in zip(out[name], digits, strict=True)]
    return out
