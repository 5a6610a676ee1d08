"""The curriculum searches: Algorithm 1 (greedy, Sec. 4.2 -> Table 5) and Algorithm 2 (computation-constrained
sequential search, Sec. 5.1 -> Table 6), with Table 21's variants as options. Every candidate evaluation is a
normal run (``runs/<id>/``: resumable, skipped when finished); a step's candidates train one after the other in
this process, or as one SLURM job array (:func:`on_cluster`) that the search follows to its end before it scores
them. The search keeps no state of its own, so running it again after an interruption re-derives every step from
the run directories and trains only what is missing (on a cluster: submits only what is neither finished nor
queued / running). Output: a curriculum file (``repro train --schedule FILE``) and a
report of every step's candidates and scores.

**Algorithm 2** (``variables="compute"``, ``objective="accuracy"``). The budget is ``T = beta T0`` equivalent
epochs (beta = 2/3, T0 = 300: ET++'s 200) in N stages of ``T / N`` compute each. For i = 1 .. N-1, every
candidate B trains stage i -- ``T / N`` compute at B, i.e. ``(T / N) (224 / B)^2`` epochs, the LR segment
``(i-1)/N .. i/N`` of the whole schedule -- from the checkpoint of the steps before, then fine-tunes ``T_ft``
epochs at the final size (LR ``i/N .. i/N + T_ft / T``) and is scored by its validation top-1; the best B is
kept; stage N is the final size. A candidate here is one run of the curriculum "chosen B_1..B_{i-1}, candidate B,
T_ft at the final size" that is the first ``(i T / N + T_ft) / T`` of the whole LR schedule (``lr_horizon``):
the engine being deterministic, its first i-1 stages are bit for bit those of the previous step's chosen run,
i.e. it *is* that run's checkpoint continued -- at the price of re-training the prefix instead of loading it.
RandAug m rises 0 -> 9 linearly on compute over the whole schedule (Table 6). The constraint holds by
construction: every stage costs ``T / N``, so the found schedule costs ``beta T0``.

**Table 21's variants**: ``variables="iterations"`` (AutoProg's: constant iterations I_i, changeable B_i and cost
T_i): every stage runs ``T0 / N`` epochs at its B, so a smaller B costs less; with ``objective="loss-cost"``
(minimise ``L_i T_i^alpha``, "Following AutoProg", L_i the training loss of the candidate's last logged steps)
or ``"error-cost"`` (minimise ``(1 - Acc_i) T_i^alpha``), T_i the stage's cost relative to the final size's.
The paper leaves alpha open (a hyper-parameter); the default here, 0.5, is an assumption. The found B_i are
written as a compute-axis curriculum (each stage's share of compute from its B) of ``beta T0`` equivalent
epochs, so that every variant is compared at the same training cost (Table 21, footnote double dagger).

**Algorithm 1** (Sec. 4.2): N equal-epoch stages of a ``T0``-epoch run (m 0 -> 9 on epochs, Table 5); for
i = N-1 .. 1, every candidate B trains the whole run from scratch with ``B_1 = .. = B_i = B`` and the stages
after i as found, and the smallest B whose top-1 is at least the baseline's (224 throughout, itself a run) is
kept. Output: an epoch-axis curriculum.

Choices the paper leaves open: N = 5 stages (Table 6's boundaries are multiples of 20 %) and the candidates
96, 128, 160, 192, 224 (Table 3's windows and the final size), both options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from repro.core.curriculum import REFERENCE_SIZE, build, from_data
from repro.errors import UserError
from repro.launch.local import run_locally
from repro.launch.manifest import RunSpec
from repro.launch.resolve import ResolvedRun, _slug, config_hash
from repro.launch.rundir import write_json_atomic

if TYPE_CHECKING:
    from repro.launch.cluster import ClusterProfile

M_FINAL = 9.0  # Tables 5, 6: m rises 0 -> 9


class SearchOptions(BaseModel):
    """How to search (Algorithms 1 and 2, Table 21's variants); epochs are the paper's (T0, T_ft) and scale
    with the run they serve (:meth:`scaled`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    algorithm: Literal[1, 2] = 2
    stages: int = Field(default=5, ge=2)
    candidates: tuple[int, ...] = (96, 128, 160, 192, 224)  # B at 224
    beta: float = Field(default=2 / 3, gt=0, le=1)
    baseline_epochs: float = Field(default=300, gt=0)  # T0
    finetune_epochs: float = Field(default=10, ge=0)  # T_ft (Algorithm 2)
    variables: Literal["compute", "iterations"] = "compute"  # constant T_i (Alg. 2) or constant I_i (AutoProg)
    objective: Literal["accuracy", "loss-cost", "error-cost"] = "accuracy"
    alpha: float = 0.5  # Table 21: the cost exponent of the AutoProg-style objectives (assumption)
    model: str | None = None  # search on another model than the run's (Table 22)
    dataset: str | None = None  # ... or another data set

    @model_validator(mode="after")
    def _consistent(self) -> SearchOptions:
        if not self.candidates or any(not 0 < b <= REFERENCE_SIZE for b in self.candidates):
            raise ValueError(f"candidates must be B values in 1..{REFERENCE_SIZE} (at 224), got {self.candidates}")
        if self.algorithm == 1 and (self.variables, self.objective) != ("compute", "accuracy"):
            raise ValueError("Table 21's variables / objective are variants of Algorithm 2; use algorithm 2")
        if self.variables == "compute" and self.objective != "accuracy":
            raise ValueError("the cost-weighted objectives need changeable cost: use variables 'iterations'")
        return self

    def scaled(self, run_epochs: float | None) -> SearchOptions:
        """The options for a run of ``run_epochs`` (equivalent) epochs standing for the paper's ``beta T0``
        (a proxy profile scales every epoch count alike)."""
        if run_epochs is None:
            return self
        s = run_epochs / (self.beta * self.baseline_epochs)
        return self.model_copy(update={"baseline_epochs": self.baseline_epochs * s,
                                       "finetune_epochs": self.finetune_epochs * s})


def options(data: dict[str, Any], where: str = "search") -> SearchOptions:
    try:
        return SearchOptions.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise UserError(f"{where}: {loc + ': ' if loc else ''}{first['msg'].removeprefix('Value error, ')}") from None


# -- candidate curricula -------------------------------------------------------------------------------------
def _stage(until: float, b: int, m: tuple[float, float]) -> dict[str, Any]:
    return {"until": until, "B": b, "m": [round(m[0], 9), round(m[1], 9)]}


def alg2_candidate(opt: SearchOptions, chosen: list[int], b: int) -> dict[str, Any]:
    """Algorithm 2, step ``len(chosen) + 1``: the chosen stages, candidate B, then T_ft at the final size, as the
    first part of the whole LR / m schedule."""
    n, i = opt.stages, len(chosen) + 1
    total = opt.beta * opt.baseline_epochs  # T, equivalent epochs
    per = total / n
    if opt.variables == "compute":
        axis, cost = "compute", [per] * i  # every stage T / N compute
    else:  # constant iterations: T0 / N epochs per stage, compute (B / 224)^2 of that
        axis, cost = "epoch", [opt.baseline_epochs / n] * i
    length = sum(cost) + opt.finetune_epochs
    horizon = (total if axis == "compute" else opt.baseline_epochs) / length
    full = length * horizon  # the whole schedule, on the axis: m rises 0 -> 9 over it
    stages, done = [], 0.0
    for k, size in enumerate([*chosen, b]):
        start, done = done, done + cost[k]
        stages.append(_stage(done / length, size, (M_FINAL * start / full, M_FINAL * done / full)))
    if opt.finetune_epochs > 0:
        stages.append(_stage(1.0, REFERENCE_SIZE, (M_FINAL * done / full, M_FINAL * length / full)))
    else:
        stages[-1]["until"] = 1.0
    return {"name": f"alg2-step{i}-B{b}", "axis": axis, "budget": length, "lr_horizon": horizon, "stages": stages,
            "source": "Algorithm 2 candidate (Sec. 5.1)"}


def alg1_candidate(opt: SearchOptions, found: dict[int, int], i: int, b: int) -> dict[str, Any]:
    """Algorithm 1, stage ``i`` (1-based): B for stages 1..i, the found B after, over T0 epochs."""
    n = opt.stages
    sizes = [b if k <= i else found.get(k, REFERENCE_SIZE) for k in range(1, n + 1)]
    return {"name": f"alg1-stage{i}-B{b}", "axis": "epoch", "budget": opt.baseline_epochs, "magnitude": [0, M_FINAL],
            "stages": [{"until": k / n, "B": s} for k, s in enumerate(sizes, 1)],
            "source": "Algorithm 1 candidate (Sec. 4.2)"}


def result_curriculum(opt: SearchOptions, sizes: list[int], name: str) -> dict[str, Any]:
    """The found schedule: Algorithm 2's on compute (beta T0 equivalent epochs, m 0 -> 9 on compute), Algorithm
    1's on epochs (T0 epochs, m on epochs)."""
    n = len(sizes)
    if opt.algorithm == 1:
        return {"name": name, "axis": "epoch", "budget": opt.baseline_epochs, "magnitude": [0, M_FINAL],
                "stages": [{"until": k / n, "B": s} for k, s in enumerate(sizes, 1)],
                "source": "Algorithm 1 (Sec. 4.2)", "description": f"B per equal-epoch stage: {sizes}"}
    share = [1.0] * n if opt.variables == "compute" else [(s / REFERENCE_SIZE) ** 2 for s in sizes]
    ends, acc = [], 0.0
    for w in share:
        acc += w
        ends.append(acc / sum(share))
    ends[-1] = 1.0
    stages = [{"until": u, "B": s} for u, s in zip(ends, sizes, strict=True)]
    return {"name": name, "axis": "compute", "budget": opt.beta * opt.baseline_epochs, "magnitude": [0, M_FINAL],
            "stages": stages, "source": f"Algorithm 2 (Sec. 5.1), variables {opt.variables}, objective "
            f"{opt.objective}", "description": f"B per stage: {sizes}"}


# -- running ---------------------------------------------------------------------------------------------------
def _score(opt: SearchOptions, summary: dict[str, Any], loss: float | None, cost: float) -> float:
    """Higher is better."""
    if opt.objective == "accuracy":
        return float(summary["top1"])
    if opt.objective == "error-cost":
        return -(1 - summary["top1"] / 100) * cost ** opt.alpha
    if loss is None:
        raise UserError("the loss-cost objective needs the candidates' training losses (metrics.jsonl)")
    return -loss * cost ** opt.alpha


def _train_loss(run_dir: Path, last: int = 5) -> float | None:
    """Mean training loss of the run's last ``last`` logged steps (Table 21's L_i)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    losses = [r["loss"] for r in map(json.loads, path.read_text().splitlines()) if r.get("kind") == "train"]
    return sum(losses[-last:]) / len(losses[-last:]) if losses else None


class Search:
    """One search: ``base`` is a resolved run config (task, model, data, optimisation) whose ``schedule`` and
    ``epochs`` each candidate replaces; candidates live in ``root`` as ``<model>-search-<hash>-s<seed>``."""

    def __init__(self, base: dict[str, Any], opt: SearchOptions, root: str | Path = "runs",
                 log: Callable[[str], None] = print, execute: Callable[[list[ResolvedRun]], Any] | None = None):
        self.base = {k: v for k, v in base.items() if k != "search"}
        if opt.model:
            self.base["model"] = opt.model
        if opt.dataset:
            self.base["dataset"] = opt.dataset
        self.opt, self.root, self.log = opt, Path(root), log
        self.execute = execute or (lambda runs: run_locally(runs, self.root, log=log))
        self.report: list[dict[str, Any]] = []

    @property
    def ident(self) -> str:
        return config_hash({"base": self.base, "options": self.opt.model_dump()})

    def _run(self, step: str, curricula: dict[int, dict[str, Any]]) -> dict[int, ResolvedRun]:
        runs = {}
        for b, data in curricula.items():
            config = {**self.base, "schedule": data, "epochs": data["budget"]}
            config.setdefault("seed", 0)
            run_id = f"{_slug(str(config['model']))}-search-{config_hash(config)}-s{config['seed']}"
            spec = RunSpec(model=str(config["model"]), method=config.get("method", "efficienttrain++"))
            runs[b] = ResolvedRun(0, step, f"B={b}", str(config.get("profile", "search")), spec, config, run_id,
                                  {}, run_id.rsplit("-s", 1)[0])
        self.execute(list(runs.values()))
        missing = [r.label for r in runs.values() if not (self.root / r.run_id / "summary.json").is_file()]
        if missing:
            raise UserError(f"search step {step}: {len(missing)} candidate run(s) did not finish ({missing[0]}...); "
                            "run the search again to resume them")
        return runs

    def _evaluate(self, step: str, curricula: dict[int, dict[str, Any]], costs: dict[int, float]) -> dict[int, float]:
        runs = self._run(step, curricula)
        scores, rows = {}, []
        for b, run in runs.items():
            summary = json.loads((self.root / run.run_id / "summary.json").read_text())
            loss = _train_loss(self.root / run.run_id)
            scores[b] = _score(self.opt, summary, loss, costs[b])
            rows.append({"B": b, "run_id": run.run_id, "top1": summary["top1"], "train_loss": loss,
                         "relative_cost": costs[b], "score": scores[b],
                         "equivalent_epochs": summary["equivalent_epochs"]})
        self.report.append({"step": step, "candidates": rows})
        return scores

    def run(self) -> dict[str, Any]:
        sizes = self._algorithm1() if self.opt.algorithm == 1 else self._algorithm2()
        return result_curriculum(self.opt, sizes, f"search-{self.ident}")

    def _algorithm2(self) -> list[int]:
        chosen: list[int] = []
        for i in range(1, self.opt.stages):
            curricula = {b: alg2_candidate(self.opt, chosen, b) for b in self.opt.candidates}
            costs = {b: (b / REFERENCE_SIZE) ** 2 if self.opt.variables == "iterations" else 1.0 for b in curricula}
            scores = self._evaluate(f"stage {i}", curricula, costs)
            best = max(scores, key=lambda b: (scores[b], -b))  # ties: the cheaper B
            chosen.append(best)
            self.report[-1]["chosen"] = best
            self.log(f"search: stage {i} of {self.opt.stages}: B = {best}")
        return [*chosen, REFERENCE_SIZE]

    def _algorithm1(self) -> list[int]:
        n = self.opt.stages
        baseline = {"name": "alg1-baseline", "axis": "epoch", "budget": self.opt.baseline_epochs,
                    "magnitude": [0, M_FINAL], "stages": [{"until": 1.0, "B": REFERENCE_SIZE}]}
        a0 = self._evaluate("baseline", {REFERENCE_SIZE: baseline}, {REFERENCE_SIZE: 1.0})[REFERENCE_SIZE]
        found: dict[int, int] = {}
        for i in range(n - 1, 0, -1):
            later = [found.get(k, REFERENCE_SIZE) for k in range(i + 1, n + 1)]
            allowed = [b for b in self.opt.candidates if b <= min(later)]  # B never decreases along training
            curricula = {b: alg1_candidate(self.opt, found, i, b) for b in allowed}
            scores = self._evaluate(f"stage {i}", curricula, {b: 1.0 for b in curricula})
            ok = [b for b in curricula if scores[b] >= a0]
            found[i] = min(ok) if ok else REFERENCE_SIZE
            self.report[-1].update(chosen=found[i], baseline_top1=a0)
            self.log(f"search: stage {i}: B = {found[i]} (baseline top-1 {a0:.2f})")
        return [found.get(k, REFERENCE_SIZE) for k in range(1, n + 1)]

    def write(self, out: str | Path, curriculum: dict[str, Any]) -> Path:
        """``out/curriculum.yaml`` and ``out/report.json``; returns the curriculum file."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        from_data(curriculum)  # what repro train --schedule will read
        path = out / "curriculum.yaml"
        path.write_text(yaml.safe_dump(curriculum, sort_keys=False))
        built = build(curriculum)
        baseline = self.opt.baseline_epochs
        write_json_atomic(out / "report.json", {
            "options": self.opt.model_dump(), "base": self.base, "steps": self.report,
            "curriculum": curriculum, "equivalent_epochs": built.equivalent_epochs,
            "compute_vs_baseline": built.equivalent_epochs / baseline,
            "beta": self.opt.beta, "within_budget": self.opt.algorithm == 1 or within_budget(curriculum, self.opt)})
        return path


def search_dir(root: str | Path, search: Search) -> Path:
    return Path(root) / f"search-{search.ident}"


def on_cluster(cluster: ClusterProfile, root: str | Path, poll: float = 10.0,
               log: Callable[[str], None] = print) -> Callable[[list[ResolvedRun]], None]:
    """A search step's executor that submits the step's candidates as one job array on ``cluster`` (those neither
    finished nor queued / running, exactly as ``repro submit`` does) and follows them until none is queued or
    running; the search then scores what finished and names what did not."""
    from repro.launch.job import follow, submit_resolved

    root = Path(root)

    def execute(runs: list[ResolvedRun]) -> None:
        dirs = [root / r.run_id for r in runs]
        _, jobs = submit_resolved(runs, root, cluster, f"search-{_slug(runs[0].row)}")
        ids = sorted({job.job_id.split("_")[0] for job in jobs.values()})
        log(f"search: {runs[0].row}: {len(jobs)} of {len(dirs)} candidates submitted"
            + (f" (job {', '.join(ids)})" if ids else "") + f" on cluster profile {cluster.name!r}")
        follow(dirs, poll, log)

    return execute


def run_search(base: dict[str, Any], opt: SearchOptions, root: str | Path = "runs", out: str | Path | None = None,
               log: Callable[[str], None] = print,
               execute: Callable[[list[ResolvedRun]], Any] | None = None) -> Path:
    """Run (or resume) a search; returns its curriculum file (``out``, default ``root/search-<hash>/``).
    ``execute`` trains a step's candidates (default: one after the other in this process; :func:`on_cluster`)."""
    search = Search(base, opt, root, log, execute)
    curriculum = search.run()
    return search.write(out or search_dir(root, search), curriculum)


def within_budget(curriculum: dict[str, Any], opt: SearchOptions) -> bool:
    """Algorithm 2's constraint: the schedule's compute is at most beta times the baseline's."""
    return build(curriculum).equivalent_epochs <= opt.beta * opt.baseline_epochs * (1 + 1e-9)
