"""Render a paper-vs-reproduced frame (:func:`repro.results.collect.reproduce`) as Markdown, CSV, LaTeX and plots.

Every reproduced cell is shown next to the paper's, with the delta; proxy numbers (the smoke profile) are
labelled as such, and holes say why they are holes (missing, partial, corrupt run, no runner yet).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from repro.launch.manifest import Manifest
from repro.results.collect import is_number

CSV_COLUMNS = ["row", "column", "paper", "reproduced", "delta", "profile", "run_id", "status"]


def _num(x: object, digits: int = 2) -> str:
    if not is_number(x):
        return "–"
    text = f"{float(x):.{digits}f}".rstrip("0").rstrip(".")  # type: ignore[arg-type]
    return text if text not in ("-0", "") else "0"


def _cell(paper: object, reproduced: object, status: str) -> str:
    if not is_number(reproduced):
        hole = "" if status in ("not reproduced",) else f" ({status})"
        return f"{_num(paper)} / –{hole}"
    delta = float(reproduced) - float(paper) if is_number(paper) else None  # type: ignore[arg-type]
    shown = f"{_num(paper)} / **{_num(reproduced)}**"
    return shown + (f" ({delta:+.2f})" if delta is not None else "")


def _wide(manifest: Manifest, frame: pd.DataFrame, render) -> list[list[str]]:  # type: ignore[no-untyped-def]
    cells = {(r.row, r.column): r for r in frame.itertuples()}
    table = []
    for row in manifest.rows:
        line = [row.label]
        for col in manifest.columns:
            r = cells[row.label, col.key]
            line.append(render(r.paper, r.reproduced, r.status))
        table.append(line)
    return table


def to_markdown(manifest: Manifest, frame: pd.DataFrame) -> str:
    profile = str(frame["profile"].iloc[0]) if len(frame) else "?"
    proxy = bool(frame["proxy"].iloc[0]) if len(frame) else False
    kind = "proxy numbers (Fashion-MNIST, CPU): compare trends, not values" if proxy else "paper setting"
    header = ["" ] + [f"{c.label} ({c.unit})" if c.unit else c.label for c in manifest.columns]
    lines = [
        f"### Table {manifest.table}: {manifest.title}",
        "",
        f"Each cell: paper / **reproduced** (delta). Profile `{profile}` -- {kind}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _wide(manifest, frame, _cell)]
    have = frame.dropna(subset=["reproduced"])
    lines += ["", f"{len(have)} of {len(frame)} cells reproduced."]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_")):
        text = text.replace(a, b)
    return text


def to_latex(manifest: Manifest, frame: pd.DataFrame) -> str:
    def cell(paper: object, reproduced: object, status: str) -> str:
        return f"{_num(paper)} / {_num(reproduced)}"

    cols = "l" + "c" * len(manifest.columns)
    head = " & ".join([""] + [_tex_escape(c.label) for c in manifest.columns]) + r" \\"
    body = [" & ".join(_tex_escape(x) for x in r) + r" \\" for r in _wide(manifest, frame, cell)]
    caption = _tex_escape(f"Table {manifest.table} ({frame['profile'].iloc[0] if len(frame) else ''}): "
                          f"{manifest.title}. Each cell: paper / reproduced.")
    return "\n".join(
        [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}", r"\toprule", head,
         r"\midrule", *body, r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}", ""]
    )


def write_table(manifest: Manifest, frame: pd.DataFrame, out_dir: str | Path = "results") -> list[Path]:
    """Write ``tableNN.md``, ``tableNN.csv`` and ``tableNN.tex`` under ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"table{manifest.table:02d}"
    paths = [stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".tex")]
    paths[0].write_text(to_markdown(manifest, frame))
    frame[CSV_COLUMNS].to_csv(paths[1], index=False)
    paths[2].write_text(to_latex(manifest, frame))
    return paths
