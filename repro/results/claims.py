"""The paper's claims as data (``experiments/claims.yaml``), tested on a profile's runs with their seeds.

A claim is a sentence of the paper (each manifest's ``shows`` says it in words) made testable: one or more
*tests*, each a linear combination of table cells (``"ROW :: COLUMN": coefficient``) that must be at least (or
greater than) a threshold -- e.g. Table 7's "ET++ top-1 >= baseline - 0.3" is ``{"{case} :: etpp_top1": 1,
"{case} :: baseline_top1": -1} >= -0.3`` -- checked for each of its *cases* (``{case}`` in a term is replaced by
each; e.g. one backbone family per case).

Verdicts, with D the combination minus the threshold and se its standard error over seeds
(sqrt(sum c^2 std^2 / n); cost-model cells are exact):
  holds         D > 2 se (for ``at_least``: D >= 0 when se = 0)
  fails         D < -2 se
  inconclusive  otherwise: the seeds cannot tell, or a run cell has fewer than 2 seeds
A claim holds when every (case, test) holds, fails when one fails, and is inconclusive otherwise; it is ``not
runnable yet`` when a run it needs has no runner (its table's method or task is not implemented), and ``not run``
when its runs can start but have not finished (``repro claims --run`` trains them).

``core`` claims are the ones ``make claims`` trains, chosen to fit its 2-hour budget on 2 CPU cores; the others
are trained on request (``repro claims --run --only ID`` or ``--all``) and until then read ``not run`` with
the number of runs they need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from repro.errors import UserError, read_yaml_mapping
from repro.launch.manifest import EXPERIMENTS_DIR, Manifest, load_manifest, manifest_path
from repro.launch.resolve import ResolvedRun, resolve

CLAIMS_FILE = EXPERIMENTS_DIR / "claims.yaml"
SEPARATOR = " :: "
MIN_SEEDS = 2  # a run cell's spread needs two seeds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Test(_Strict):
    terms: dict[str, float] = Field(min_length=1)  # "ROW :: COLUMN" -> coefficient; ROW may hold {case}
    at_least: float | None = None
    greater_than: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> Test:
        if (self.at_least is None) == (self.greater_than is None):
            raise ValueError("give exactly one of at_least / greater_than")
        return self

    @property
    def threshold(self) -> float:
        return self.at_least if self.at_least is not None else self.greater_than  # type: ignore[return-value]

    def describe(self) -> str:
        def term(key: str, c: float) -> str:
            sign = "-" if c < 0 else "+"
            mag = "" if abs(c) == 1 else f"{abs(c):g}·"
            return f"{sign} {mag}{key.split(SEPARATOR)[-1]}"

        text = " ".join(term(k, c) for k, c in self.terms.items()).lstrip("+ ")
        return f"{text} {'>=' if self.at_least is not None else '>'} {self.threshold:g}"


class Claim(_Strict):
    id: str
    table: int
    says: str
    source: str
    core: bool = False  # trained by `make claims`
    cases: list[str] = Field(default_factory=lambda: [""])
    tests: list[Test] = Field(min_length=1)

    def cells(self, case: str, test: Test) -> list[tuple[str, str, float]]:
        """(row, column, coefficient) of a test for one case."""
        out = []
        for key, coef in test.terms.items():
            row, sep, col = key.replace("{case}", case).rpartition(SEPARATOR)
            out.append((row, col, coef) if sep else ("", key, coef))
        return out


class ClaimsFile(_Strict):
    profile: str = "proxy"
    claims: list[Claim] = Field(min_length=1)


def load_claims(path: str | Path = CLAIMS_FILE) -> ClaimsFile:
    """Parse and validate the claims file: every term names a row and a run, ratio or cost column of its table."""
    path = Path(path)
    data = read_yaml_mapping(path, "claims file", "see experiments/claims.yaml")
    try:
        claims = ClaimsFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise UserError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    ids = [c.id for c in claims.claims]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: duplicate claim ids {sorted({i for i in ids if ids.count(i) > 1})}")
    for claim in claims.claims:
        manifest = load_manifest(manifest_path(claim.table))
        rows = {r.label: r for r in manifest.rows}
        cols = {c.key: c for c in manifest.columns}
        for case in claim.cases:
            for test in claim.tests:
                for row, col, _ in claim.cells(case, test):
                    if row not in rows:
                        raise UserError(f"{path}: claim {claim.id}: table {claim.table} has no row {row!r}")
                    if col not in cols or cols[col].source == "paper":
                        raise UserError(f"{path}: claim {claim.id}: table {claim.table} has no reproduced "
                                        f"column {col!r}")
                    run = cols[col].run if cols[col].source == "run" else cols[col].numerator
                    if cols[col].source != "cost" and run not in rows[row].runs:
                        raise UserError(f"{path}: claim {claim.id}: table {claim.table}, row {row!r} has no run "
                                        f"{run!r} for column {col!r}")
    return claims


def needed_runs(claim: Claim, profile: str) -> list[ResolvedRun]:
    """The runs (every seed) behind a claim's cells: a run column's run, a ratio column's two."""
    manifest = load_manifest(manifest_path(claim.table))
    cols = {c.key: c for c in manifest.columns}
    keys = {(row, key) for case in claim.cases for test in claim.tests for row, col, _ in claim.cells(case, test)
            for key in (cols[col].run, cols[col].numerator, cols[col].denominator)
            if key is not None and cols[col].source != "cost"}
    return [r for r in resolve(manifest, profile, sorted({row for row, _ in keys})) if (r.row, r.key) in keys]


@dataclass
class Check:
    case: str
    test: Test
    value: float | None  # the combination of the cells' means
    se: float | None
    verdict: str
    cells: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    detail: str = ""
    checks: list[Check] = field(default_factory=list)


def _verdict(d: float, se: float, strict: bool) -> str:
    if se == 0:
        return "holds" if (d > 0 if strict else d >= 0) else "fails"
    return "holds" if d > 2 * se else "fails" if d < -2 * se else "inconclusive"


def check(claim: Claim, frames: dict[int, pd.DataFrame]) -> list[Check]:
    frame = frames[claim.table].set_index(["row", "column"])
    checks = []
    for case in claim.cases:
        for test in claim.tests:
            total, var, verdict, cells = 0.0, 0.0, "", []
            for row, col, coef in claim.cells(case, test):
                cell = frame.loc[row, col]
                mean, std, n = cell["reproduced"], cell["std"], int(cell["n"])
                cells.append({"row": row, "column": col, "mean": mean, "std": std, "n": n, "status": cell["status"]})
                if mean is None or (isinstance(mean, float) and math.isnan(mean)):
                    verdict = verdict or f"missing: {row} / {col} ({cell['status']})"
                    continue
                total += coef * float(mean)
                if cell["source"] != "cost":  # measured: its spread over seeds
                    if n < MIN_SEEDS or std is None or (isinstance(std, float) and math.isnan(std)):
                        verdict = verdict or "inconclusive"
                        continue
                    var += coef * coef * float(std) ** 2 / n
            if verdict.startswith("missing"):
                checks.append(Check(case, test, None, None, verdict, cells))
                continue
            d, se = total - test.threshold, math.sqrt(var)
            checks.append(Check(case, test, total, se, verdict or _verdict(d, se, test.greater_than is not None),
                                cells))
    return checks


def evaluate(claims: ClaimsFile, runs: pd.DataFrame, cost: Any = None) -> list[Verdict]:
    """Every claim's verdict from the runs under ``runs`` (see the module docstring for the rules)."""
    from repro.results.collect import reproduce
    from repro.tasks import task_for

    frames: dict[int, pd.DataFrame] = {}
    verdicts = []
    for claim in claims.claims:
        runs_needed = needed_runs(claim, claims.profile)
        blocked = next(((r, why) for r in runs_needed for task, why in [task_for(r.config)] if task is None), None)
        if blocked is not None:
            verdicts.append(Verdict(claim, "not runnable yet", f"{blocked[0].row} / {blocked[0].key}: {blocked[1]}"))
            continue
        if claim.table not in frames:
            manifest: Manifest = load_manifest(manifest_path(claim.table))
            frames[claim.table] = reproduce(manifest, claims.profile, runs, cost)
        checks = check(claim, frames)
        no_evaluator = next((cell for c in checks for cell in c.cells if cell["status"].startswith("no evaluator")),
                            None)
        if no_evaluator is not None:  # trained runs, but nothing yet measures what the cell reports
            verdicts.append(Verdict(claim, "not runnable yet", f"{no_evaluator['row']} / {no_evaluator['column']}: "
                                                               f"{no_evaluator['status']}"))
            continue
        if any(c.verdict.startswith("missing") for c in checks):
            first = next(c for c in checks if c.verdict.startswith("missing"))
            detail = first.verdict if claim.core else (
                f"not in make claims' set; `repro claims --run --only {claim.id}` trains its "
                f"{len({r.run_id for r in runs_needed})} runs")
            verdicts.append(Verdict(claim, "not run", detail, checks))
            continue
        kinds = {c.verdict for c in checks}
        overall = "fails" if "fails" in kinds else "holds" if kinds == {"holds"} else "inconclusive"
        verdicts.append(Verdict(claim, overall, "", checks))
    return verdicts


def _fmt(x: Any, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.{digits}f}"


def to_markdown(claims: ClaimsFile, verdicts: list[Verdict], seeds_note: str = "") -> str:
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    order = ("holds", "fails", "inconclusive", "not run", "not runnable yet")
    lines = [
        f"# The paper's claims, tested on the `{claims.profile}` profile",
        "",
        "Generated by `make claims` (`repro claims --run`) from `experiments/claims.yaml`; each claim is a sentence "
        "of the paper made testable on table cells. A test's value combines the cells' means over seeds; it "
        "**holds** when it clears its threshold by more than 2 standard errors (over seeds), **fails** when it "
        "misses it by more than 2, and is **inconclusive** in between. Proxy numbers (Fashion-MNIST, tiny "
        "models, CPU) test the paper's relative claims, not its values." + (f" {seeds_note}" if seeds_note else ""),
        "",
        "**" + ", ".join(f"{counts[k]} {k}" for k in order if k in counts) + f"** (of {len(verdicts)} claims).",
        "",
        "| Claim | Table | The paper says | Verdict |",
        "|---|---|---|---|",
    ]
    for v in verdicts:
        detail = f" ({v.detail})" if v.detail else ""
        lines.append(f"| `{v.claim.id}` | {v.claim.table} | {v.claim.says} | **{v.verdict}**{detail} |")
    lines += ["", "## The numbers", ""]
    for v in verdicts:
        if not v.checks:
            continue
        lines += [f"### `{v.claim.id}` (Table {v.claim.table}, {v.claim.source}): {v.verdict}", "",
                  "| Case | Test | Cells: mean ± std (n) | Value ± se | Verdict |", "|---|---|---|---|---|"]
        for c in v.checks:
            cells = "; ".join(f"{cell['column']}" + (f" [{cell['row']}]" if cell["row"] != c.case else "")
                              + f" {_fmt(cell['mean'])}" + (f" ± {_fmt(cell['std'])} ({cell['n']})"
                                                          if cell["n"] else "") for cell in c.cells)
            lines.append(f"| {c.case or '–'} | {c.test.describe()} | {cells} | {_fmt(c.value)} ± {_fmt(c.se)} | "
                         f"{c.verdict} |")
        lines.append("")
    return "\n".join(lines) + "\n"
