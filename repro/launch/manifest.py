"""Experiment manifests: one YAML file per paper table (``experiments/tableNN.yaml``), validated by pydantic.

A manifest is data, not code. It holds the table's caption and labels, **every numeric cell the paper
reports** (so the aggregator can compare against it), and for each cell that comes from training the run that
produces it -- task, model, method, schedule, budget and the overrides of its task's base configuration
(``experiments/base/*.yaml``: Table 24 and the per-model exceptions of App. A). Profiles say how to run it:
``full`` is the paper's setting, ``smoke`` the same rows on the Fashion-MNIST proxy on a CPU; a profile given
by name (``smoke: smoke``) is the shared ``experiments/profiles/<name>.yaml``.

Columns say where a reproduced value comes from:

* ``run``   -- metric ``metric`` of the row's run ``run`` (e.g. top-1 of ``etpp``);
* ``ratio`` -- ``metric`` of run ``numerator`` divided by that of run ``denominator`` (wall-time speedup);
* ``cost``  -- the cost model (parameters, FLOPs, computation speedup; ``repro cost``);
* ``paper`` -- reported for reference only (settings, other authors' numbers): compared with nothing.

A cell is a number, ``null`` for a dash in the paper, or ``{value: ..., note: ...}`` for a number with a mark
(``<2.22x``, ``83.2%+``, ``~1.5x``). Percentages are stored without ``%`` and speedups without ``x``.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from repro.errors import UserError, read_yaml_mapping

Task = Literal["in1k", "in22k", "in22k_finetune", "mae", "mae_finetune", "coco", "ade20k", "transfer",
               "analysis"]
"""in1k: ImageNet-1K classification; in22k: IN-22K pre-training; in22k_finetune: its IN-1K fine-tuning (a run
link to the in22k run); mae: MAE pre-training; mae_finetune: end-to-end fine-tuning of an MAE pre-training (a
run link to the mae run); coco / ade20k: detection / segmentation on a pre-trained backbone; transfer:
fine-tuning on a downstream classification set; analysis: measurements that are not a training run (I/O, search
cost)."""

KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RunSpec(_Strict):
    """What to train for a cell. ``epochs`` is real epochs for baseline / EfficientTrain, equivalent epochs for
    EfficientTrain++ (Sec. 6, 'Overview'); ``overrides`` change the base configuration (timm flag names)."""

    task: Task = "in1k"
    model: str
    method: str | list[str]  # a method or a list of them (repro.methods)
    schedule: str | None = None  # a preset, or a curriculum file (relative to experiments/): see schedule_setting
    epochs: float | None = Field(default=None, gt=0)
    final_size: int | None = Field(default=None, gt=0)
    dataset: str | None = None
    init_from: str | None = None  # another run of the same row this one starts from (its key): a run link
    overrides: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


class MarkedValue(_Strict):
    value: float
    note: str


Cell = Annotated[float | MarkedValue | None, Field(union_mode="left_to_right")]


def cell_value(cell: Cell) -> float | None:
    return cell.value if isinstance(cell, MarkedValue) else cell


class Column(_Strict):
    key: str
    label: str
    unit: str = ""
    source: Literal["run", "ratio", "cost", "paper"]
    metric: str | None = None
    run: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    higher_is_better: bool = True
    tolerance: float | None = Field(default=None, ge=0)  # |reproduced - paper| counted as agreement

    @field_validator("key")
    @classmethod
    def _snake_case(cls, v: str) -> str:
        if not KEY.match(v):
            raise ValueError(f"column key {v!r} must be snake_case (a-z, 0-9, _)")
        return v

    @model_validator(mode="after")
    def _source_fields(self) -> Column:
        need = {"run": ("metric", "run"), "ratio": ("metric", "numerator", "denominator"), "cost": ("metric",)}
        for name in need.get(self.source, ()):
            if getattr(self, name) is None:
                raise ValueError(f"column {self.key!r} with source {self.source!r} needs {name!r}")
        return self


class Row(_Strict):
    label: str
    group: str | None = None
    runs: dict[str, RunSpec] = Field(default_factory=dict)
    cells: dict[str, Cell]
    note: str | None = None

    @model_validator(mode="after")
    def _links(self) -> Row:
        """Every ``init_from`` names another run of this row, and following the links never comes back."""
        for key, spec in self.runs.items():
            if spec.init_from is not None and spec.init_from not in self.runs:
                raise ValueError(f"run {key!r}: init_from {spec.init_from!r} is not a run of this row "
                                 f"(runs: {', '.join(self.runs)})")
        for key in self.runs:
            chain = [key]
            while (up := self.runs[chain[-1]].init_from) is not None:
                if up in chain:
                    raise ValueError(f"run {key!r}: init_from links form a cycle ({' -> '.join([*chain, up])})")
                chain.append(up)
        return self

    def link_order(self) -> list[str]:
        """The row's run keys, each after the run it starts from (otherwise in manifest order)."""
        order: list[str] = []

        def visit(key: str) -> None:
            if key not in order:
                up = self.runs[key].init_from
                if up is not None:
                    visit(up)
                order.append(key)

        for key in self.runs:
            visit(key)
        return order


class StandIn(_Strict):
    """The data set a profile trains on where a run names a paper data set it does not have (``stand_ins``):
    ``max_train_images`` of its training split (the profile's subset size when null), and the stand-in's own
    ``epoch_scale`` where it has one (the detection / segmentation proxies: 2 % of a COCO 1x schedule is a
    quarter of an epoch), and ``overrides``: settings of every run on the stand-in (the proxy detectors' batch and
    learning rates), over the profile's and under the run's own."""

    dataset: str
    max_train_images: int | None = Field(default=None, gt=0)
    epoch_scale: float | None = Field(default=None, gt=0)
    overrides: dict[str, Any] = Field(default_factory=dict)
    why: str


ProfileName = Literal["full", "proxy", "smoke"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
"""``full``: the paper's setting; ``proxy``: the rows trained to convergence on Fashion-MNIST, where claims are
tested; ``smoke``: the same rows at 2% of the epochs, to check that everything runs."""


class Profile(_Strict):
    """How to run the manifest's rows. ``epoch_scale`` multiplies every run's epochs; the proxies keep the
    relative costs of the full setting (B scales with ``final_size``, ``adapt: linear``). ``seeds``: how many
    seeds (0, 1, ...) each run is trained with -- a dimension of the run, part of its identity. ``stand_ins``
    maps a run's paper data set (IN-22K, CIFAR, ...) to the proxy data set that replaces it."""

    description: str
    dataset: str
    final_size: int = Field(gt=0)
    adapt: Literal["table10", "linear"] = "table10"
    epoch_scale: float = Field(default=1.0, gt=0)
    model_variant: Literal["full", "proxy"] = "full"
    global_batch: int | None = Field(default=None, gt=0)
    gpus: int | None = Field(default=None, gt=0)
    max_train_images: int | None = Field(default=None, gt=0)
    expected_hours: float | None = Field(default=None, gt=0)
    seeds: int = Field(default=1, ge=1)
    stand_ins: dict[str, StandIn] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)


TIME_METRIC = "wall_time"
"""The metric of the wall-time speedup columns (``source: ratio``); on CPU their cells use ``cpu_time``
(:func:`repro.results.collect.time_measure`)."""


class Manifest(_Strict):
    table: int = Field(ge=1)
    title: str
    caption: str
    shows: str
    command: str
    columns: list[Column] = Field(min_length=1)
    rows: list[Row] = Field(min_length=1)
    profiles: dict[ProfileName, Profile] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate column keys: {sorted({k for k in keys if keys.count(k) > 1})}")
        labels = [r.label for r in self.rows]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate row labels: {sorted({x for x in labels if labels.count(x) > 1})}")
        columns = {c.key: c for c in self.columns}
        for i, row in enumerate(self.rows):
            where = f"rows[{i}] ({row.label!r})"
            missing, unknown = set(keys) - set(row.cells), set(row.cells) - set(keys)
            if unknown:
                raise ValueError(f"{where}: cells {sorted(unknown)} are not columns (columns: {keys})")
            if missing:
                raise ValueError(f"{where}: no cell for columns {sorted(missing)} (write null for a dash)")
            for key, cell in row.cells.items():
                col = columns[key]
                if cell is None:
                    continue
                needed = [col.run] if col.source == "run" or (col.source == "cost" and col.run) else []
                needed += [col.numerator, col.denominator] if col.source == "ratio" else []
                for run in needed:
                    if run not in row.runs:
                        raise ValueError(f"{where}: column {key!r} needs a run {run!r} in this row's runs")
        return self

    def timed_pairs(self) -> list[tuple[str, str, str]]:
        """(row label, numerator run key, denominator run key) of every training-time ratio the table shows."""
        return [(row.label, str(col.numerator), str(col.denominator)) for col in self.columns
                if col.source == "ratio" and col.metric == TIME_METRIC for row in self.rows
                if row.cells[col.key] is not None and col.numerator in row.runs and col.denominator in row.runs]

    def row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise UserError(f"table {self.table} has no row {label!r}; rows: {', '.join(r.label for r in self.rows)}")

    def paper_cells(self) -> list[tuple[str, str, float]]:
        """(row label, column key, value) for every numeric cell, in table order."""
        out = []
        for row in self.rows:
            for col in self.columns:
                value = cell_value(row.cells[col.key])
                if value is not None:
                    out.append((row.label, col.key, value))
        return out


EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"


def _format_error(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    more = f" [+{err.error_count() - 1} more]" if err.error_count() > 1 else ""
    return f"{path}: {loc or 'manifest'}: {msg}{shown}{more}"


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest; any problem is one ``UserError`` line naming file, field and expectation.

    Beyond the schema, every run must name things that exist -- its task's base, model, method, schedule and
    override keys of the right types -- so that a mistake stops ``repro validate``, not a run after others trained.
    """
    path = Path(path)
    data = read_yaml_mapping(path, "manifest", "see experiments/ for the tables")
    profiles = data.get("profiles")
    if isinstance(profiles, dict):
        data["profiles"] = {name: _shared_profile(path, name, value) if isinstance(value, str) else value
                            for name, value in profiles.items()}
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_error(path, err)) from None
    match = re.fullmatch(r"table(\d+)\.ya?ml", path.name)
    if match and int(match.group(1)) != manifest.table:
        named = int(match.group(1))
        raise UserError(f"{path}: table: file name says table {named} but the manifest says {manifest.table}")
    for name, profile in manifest.profiles.items():
        _check_overrides(path, f"profiles.{name}.overrides", profile.overrides, Profile)
        for dataset, stand_in in profile.stand_ins.items():
            _check_overrides(path, f"profiles.{name}.stand_ins.{dataset}.overrides", stand_in.overrides, StandIn)
    bases: dict[str, BaseConfig] = {}
    for i, row in enumerate(manifest.rows):
        for key, spec in row.runs.items():
            _check_run(path, f"rows.{i}.runs.{key}", f"row {row.label!r}", spec, bases)
            _check_link(path, f"rows.{i}.runs.{key}", f"row {row.label!r}", spec, row)
    return manifest


def _check_link(path: Path, loc: str, row_name: str, spec: RunSpec, row: Row) -> None:
    """A run starts from a run of a task its own task accepts (``repro.tasks.Task.upstream``), and a task that
    only fine-tunes names one."""
    from repro.tasks import get_task

    task = get_task(spec.task)
    if task is None:  # no runner: `repro run` names it; what it may start from is not defined yet
        return
    where = f"{path}: {loc}.init_from ({row_name})"
    if spec.init_from is None:
        if task.requires_upstream:
            raise UserError(f"{where}: a {spec.task!r} run fine-tunes another run: name it with init_from "
                            f"(a run of this row with task {' or '.join(sorted(task.upstream))})")
        return
    upstream = row.runs[spec.init_from]
    if upstream.task not in task.upstream:
        accepted = ", ".join(sorted(task.upstream)) or "none (it trains from scratch)"
        raise UserError(f"{where}: a {spec.task!r} run cannot start from {spec.init_from!r}, a {upstream.task!r} "
                        f"run; it starts from tasks: {accepted}")


class BaseConfig(_Strict):
    """``experiments/base/<task>.yaml``: a task's shared configuration (Table 24) and per-model exceptions; the
    models it lists are those a run of the task may name beyond the Table 7 zoo. Besides training settings, a
    model's entry may name its ``timm`` model and the zoo model whose tiny ``proxy`` stands in for it on a proxy
    profile (the zoo's proxies are per family: ConvNeXt-Large's is ConvNeXt-Base's)."""

    name: str
    config: dict[str, Any]
    models: dict[str, dict[str, Any]] = {}


def load_base(name: str, directory: Path = EXPERIMENTS_DIR / "base") -> BaseConfig:
    """The base config of task ``name``; a missing or broken file is one ``UserError`` line."""
    path = directory / f"{name}.yaml"
    known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
    if not path.is_file():
        close = difflib.get_close_matches(name, known.split(", "), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"no base config {name!r}{hint}; known: {known} (experiments/base/NAME.yaml)")
    data = read_yaml_mapping(path, "base config", f"known: {known}")
    try:
        return BaseConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_error(path, err)) from None


# Settings that say how a trained run is evaluated (repro.results.evaluators), not how it trains: a manifest may
# name them besides the training settings. Name -> what it is.
EVALUATION_SETTINGS: dict[str, str] = {
    "eval_filter": "Table 1: evaluate on low- or high-pass filtered inputs",
    "eval_filter_radius": "Table 1: the evaluation filter's radius",
    "eval_epoch": "Table 1: evaluate the checkpoint of this epoch",
}


def schedule_setting(schedule: str) -> str | dict[str, Any]:
    """A run's ``schedule`` as a training setting: a preset's name, or the content of a curriculum file (a path
    relative to ``experiments/``, or absolute) -- the content, so that editing the file makes another run."""
    from repro.core.curriculum import get_spec, is_file_name, load

    if not is_file_name(schedule):
        get_spec(schedule)
        return schedule
    return load(EXPERIMENTS_DIR / schedule)


# Settings of the detection / segmentation tasks (repro.tasks.coco, repro.tasks.ade20k), not of the engine.
TASK_SETTINGS: dict[str, str] = {
    "detector": "Table 17: the COCO detector and its schedule (repro.detseg.configs.DETECTORS)",
    "segmentor": "Table 18: the ADE20K segmentor and its schedule (repro.detseg.configs.SEGMENTORS)",
    "images_per_batch": "Tables 17/18: the detector's / segmentor's global batch (the shipped 16)",
    "lr_scale": "Tables 17/18: detector / segmentor -> factor on its shipped learning rate",
    "proxy_val_images": "Tables 17/18: validation canvases of the COCO / ADE20K proxies",
}


def _check_run(path: Path, loc: str, row: str, spec: RunSpec, bases: dict[str, BaseConfig]) -> None:
    """One run names a task with a base config, a known model, method and schedule; its overrides are settings of
    the right types. ``bases`` caches the base configs by task."""
    from repro.methods import check_names
    from repro.models import TABLE7, entry

    def where(field: str) -> str:
        return f"{path}: {loc}.{field} ({row})"

    if spec.task not in bases:
        try:
            bases[spec.task] = load_base(spec.task)
        except UserError as err:
            raise UserError(f"{where('task')}: {err}") from None
    base = bases[spec.task]
    try:
        entry(spec.model)
    except UserError:
        if spec.model not in base.models and not _is_timm_model(spec.model):
            names = list(dict.fromkeys([e.paper for e in TABLE7] + list(base.models)))
            raise UserError(f"{where('model')}: unknown model {spec.model!r}{_close(spec.model, names)}; use a "
                            f"Table 7 model (repro cost table7), one of experiments/base/{spec.task}.yaml's models "
                            "or a timm name") from None
    try:
        check_names(spec.method)
    except UserError as err:
        raise UserError(f"{where('method')}: {err}") from None
    if spec.schedule is not None:
        try:
            schedule_setting(spec.schedule)
        except UserError as err:
            raise UserError(f"{where('schedule')}: {err} (repro schedule --list)") from None
    _check_overrides(path, f"{loc}.overrides", spec.overrides, RunSpec, row)


def _check_overrides(path: Path, loc: str, overrides: dict[str, Any], owner: type[BaseModel], row: str = "") -> None:
    """Override keys are training settings (``TrainConfig``'s fields, timm flag names) or evaluation settings;
    values must have the setting's type. A field of the run or profile itself
    (``epochs``, ``dataset``...) is set there: the resolver would replace it."""
    from repro.methods.frequency_studies import ALL_SETTINGS as STUDY_SETTINGS
    from repro.train.config import RESOLVED_ONLY, TrainConfig

    fields = TrainConfig.model_fields
    known = (set(fields) | RESOLVED_ONLY | set(EVALUATION_SETTINGS) | set(STUDY_SETTINGS) | set(TASK_SETTINGS)
             | {"search"})
    kind = {RunSpec: "run", StandIn: "stand-in"}.get(owner, "profile")
    for key, value in overrides.items():
        where = f"{path}: {loc}.{key}" + (f" ({row})" if row else "")
        if key in owner.model_fields:
            raise UserError(f"{where}: {key!r} is a field of the {kind}: set it there, not in overrides")
        if key == "seed":  # a run is trained once per seed: every seed is its own run
            raise UserError(f"{where}: seeds are a dimension of every run: set the profile's 'seeds: N' (or "
                            f"`repro run --seeds N`), not a seed override")
        if key not in known:
            raise UserError(f"{where}: unknown setting {key!r}{_close(key, sorted(known))}; overrides are training "
                            f"settings (timm flag names: the fields of repro.train.config.TrainConfig)")
        if key in fields:
            info = fields[key]
            try:
                TypeAdapter(Annotated[info.annotation, info], config=ConfigDict(allow_inf_nan=False)).validate_python(
                    value)
            except ValidationError as err:
                raise UserError(f"{where}: {err.errors()[0]['msg']} (got {value!r})") from None
        elif key == "search":  # the run's curriculum is found by repro.launch.search first (Tables 21, 22)
            from repro.launch.search import options

            options(value if isinstance(value, dict) else {"algorithm": value}, where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{where}: must be a finite number (got {value!r})")


def _close(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def _is_timm_model(name: str) -> bool:
    """The engine builds any timm model by its timm name (``repro.train.model``); timm is imported only here."""
    import timm

    return bool(timm.is_model(name))


def _shared_profile(manifest: Path, profile: str, name: str) -> dict[str, Any]:
    """``profiles: {smoke: smoke}`` names ``profiles/smoke.yaml`` next to the manifest (else in experiments/):
    one definition of a profile that many tables share."""
    for directory in (manifest.parent / "profiles", EXPERIMENTS_DIR / "profiles"):
        if (directory / f"{name}.yaml").is_file():
            return _profile_data(directory / f"{name}.yaml")
    raise UserError(f"{manifest}: profiles.{profile}: no shared profile {name!r} (expected "
                    f"experiments/profiles/{name}.yaml; known: {_known_profiles()})")


def _known_profiles() -> str:
    return ", ".join(sorted(p.stem for p in (EXPERIMENTS_DIR / "profiles").glob("*.yaml"))) or "none"


def _profile_data(path: Path) -> dict[str, Any]:
    data = read_yaml_mapping(path, "profile", "see experiments/profiles/")
    if isinstance(data.get("stand_ins"), str):  # a set of experiments/stand_ins.yaml, shared by profiles
        data["stand_ins"] = _stand_ins(path, data["stand_ins"])
    return data


def load_profile(name: str) -> Profile:
    """The shared profile ``experiments/profiles/<name>.yaml``, validated (what a manifest's ``proxy: proxy``
    names; ``repro train`` takes its Fashion-MNIST defaults from ``proxy``)."""
    path = EXPERIMENTS_DIR / "profiles" / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"no shared profile {name!r} (expected {path}; known: {_known_profiles()})")
    try:
        return Profile.model_validate(_profile_data(path))
    except ValidationError as err:
        raise UserError(_format_error(path, err)) from None


STAND_INS = EXPERIMENTS_DIR / "stand_ins.yaml"


def _stand_ins(profile: Path, name: str) -> Any:
    sets = read_yaml_mapping(STAND_INS, "stand-ins", "one mapping per set: paper data set -> stand-in")
    if name not in sets:
        raise UserError(f"{profile}: stand_ins: no set {name!r} in {STAND_INS} (sets: {', '.join(sets)})")
    return sets[name]


# The paper's tables that define settings rather than report experiments: where each lives instead of a manifest.
DEFINITION_TABLES = {
    5: "EfficientTrain's curriculum: `repro schedule et` prints it (repro/core/curriculum.py)",
    6: "EfficientTrain++'s curriculum: `repro schedule etpp` prints it (repro/core/curriculum.py)",
    24: "the training settings: experiments/base/in1k.yaml holds them (`repro train --help` shows the defaults)",
}


def manifest_path(table: int | str) -> Path:
    """``experiments/tableNN.yaml`` for a table number (or a path, returned as is); a table that defines settings
    (:data:`DEFINITION_TABLES`) is a one-line error saying where it lives."""
    if isinstance(table, str) and not table.isdigit():
        return Path(table)
    if int(table) in DEFINITION_TABLES:
        raise UserError(f"Table {int(table)} has no manifest: it is {DEFINITION_TABLES[int(table)]}")
    return EXPERIMENTS_DIR / f"table{int(table):02d}.yaml"


def all_manifests() -> list[Path]:
    return sorted(EXPERIMENTS_DIR.glob("table*.yaml"))
